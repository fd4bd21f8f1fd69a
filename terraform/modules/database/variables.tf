variable "existing_server" {
  description = "The connection of an existing PostgreSQL server for the builds (a role with CREATEDB), its password in existing_password. When set, nothing is created and the other inputs are ignored."
  type = object({
    host = string
    port = optional(number, 5432)
    user = string
  })
  default = null
}

variable "existing_password" {
  description = "The password of existing_server's user."
  type        = string
  default     = null
  sensitive   = true
}

variable "name" {
  description = "Identifier of the RDS instance, and prefix of its subnet group and security group."
  type        = string
  default     = "runboat-builds"
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Private subnets of the VPC for the instance (two availability zones at least, as RDS requires)."
  type        = list(string)
  default     = []
}

variable "node_security_group_id" {
  description = "Security group of the cluster's nodes: the only source allowed to connect (port 5432)."
  type        = string
  default     = null
}

variable "engine_version" {
  description = "PostgreSQL major version (must suit the builds' Odoo versions)."
  type        = string
  default     = "16"
}

variable "instance_class" {
  description = "Instance class. Build databases are small and mostly idle; the initializations (RUNBOAT_MAX_INITIALIZING at once) are the peak."
  type        = string
  default     = "db.t4g.medium"
}

variable "allocated_storage_gb" {
  description = "Storage in GB (gp3). An Odoo build database takes 50 to 500 MB; count RUNBOAT_MAX_DEPLOYED of them."
  type        = number
  default     = 50
}

variable "max_allocated_storage_gb" {
  description = "Upper bound of storage autoscaling, in GB (0: off)."
  type        = number
  default     = 200
}

variable "username" {
  description = "The master user, which the builds use (PGUSER): on RDS it has CREATEDB, so a build creates its databases and its cleanup drops them."
  type        = string
  default     = "runboat"
}

variable "manage_password" {
  description = "RDS makes the master user's password and keeps it in Secrets Manager (the module reads it from there for build_secret_env). False: the password is the input password."
  type        = bool
  default     = true
}

variable "password" {
  description = "The master user's password, when manage_password is false."
  type        = string
  default     = null
  sensitive   = true
}

variable "backup_retention_days" {
  description = "Automated backups kept, in days (the builds are disposable: 1 is plenty; 0 turns backups off)."
  type        = number
  default     = 1
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (set false before a destroy)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags of what is created."
  type        = map(string)
  default     = {}
}
