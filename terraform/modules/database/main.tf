locals {
  create = var.existing_server == null
}

resource "aws_db_subnet_group" "builds" {
  count = local.create ? 1 : 0

  name       = var.name
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_security_group" "builds" {
  count = local.create ? 1 : 0

  name        = "${var.name}-postgres"
  description = "PostgreSQL of the runboat builds: reachable from the cluster's nodes only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "from_nodes" {
  count = local.create ? 1 : 0

  security_group_id            = aws_security_group.builds[0].id
  description                  = "PostgreSQL from the cluster's nodes"
  referenced_security_group_id = var.node_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_db_instance" "builds" {
  count = local.create ? 1 : 0

  identifier     = var.name
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class

  allocated_storage     = var.allocated_storage_gb
  max_allocated_storage = var.max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true

  db_subnet_group_name   = aws_db_subnet_group.builds[0].name
  vpc_security_group_ids = [aws_security_group.builds[0].id]
  publicly_accessible    = false

  username                    = var.username
  password                    = var.manage_password ? null : var.password
  manage_master_user_password = var.manage_password ? true : null

  backup_retention_period   = var.backup_retention_days
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-final"
  apply_immediately         = true
  tags                      = var.tags

  lifecycle {
    precondition {
      condition     = var.vpc_id != null && var.node_security_group_id != null && length(var.subnet_ids) >= 2
      error_message = "Creating the server needs vpc_id, node_security_group_id and two subnet_ids at least (or give existing_server)."
    }
    precondition {
      condition     = var.manage_password || var.password != null
      error_message = "With manage_password false, give the password."
    }
  }
}

# The password RDS keeps in Secrets Manager, when it made it. Read at apply
# time (the secret exists once the instance does).
data "aws_secretsmanager_secret_version" "master" {
  count = local.create && var.manage_password ? 1 : 0

  secret_id = aws_db_instance.builds[0].master_user_secret[0].secret_arn
}

locals {
  host = local.create ? aws_db_instance.builds[0].address : var.existing_server.host
  port = local.create ? aws_db_instance.builds[0].port : var.existing_server.port
  user = local.create ? var.username : var.existing_server.user
  password = (
    !local.create ? var.existing_password :
    var.manage_password ? jsondecode(data.aws_secretsmanager_secret_version.master[0].secret_string).password :
    var.password
  )
}
