output "build_env" {
  description = "The connection for RUNBOAT_BUILD_ENV (not secret): PGHOST, PGPORT, PGUSER."
  value = {
    PGHOST = local.host
    PGPORT = tostring(local.port)
    PGUSER = local.user
  }
}

output "build_secret_env" {
  description = "The password for RUNBOAT_BUILD_SECRET_ENV: PGPASSWORD. Sensitive: give it to modules/namespace's build_secret_env, never print it."
  value = {
    PGPASSWORD = local.password
  }
  sensitive = true
}

output "password_secret_arn" {
  description = "ARN of the Secrets Manager secret RDS keeps the password in (null when manage_password is false or the server exists)."
  value       = local.create && var.manage_password ? aws_db_instance.builds[0].master_user_secret[0].secret_arn : null
}

output "security_group_id" {
  description = "The server's security group (null for an existing server)."
  value       = local.create ? aws_security_group.builds[0].id : null
}
