output "webhook_url" {
  description = "The GitHub webhook's payload URL (content type application/json; events: pushes, pull requests, branch or tag deletion)."
  value       = "${trimsuffix(module.function.function_url, "/")}/webhooks/github"
}

output "console_url" {
  description = "The console (set base_url to it and apply again, so commit statuses link to it)."
  value       = module.function.function_url
}

output "namespace" {
  description = "The builds namespace, for the overlay of manifests/."
  value       = module.namespace.namespace
}

output "build_env" {
  description = "RUNBOAT_BUILD_ENV for the jobs' config (manifests/config.yaml): the database connection."
  value       = jsonencode(module.database.build_env)
}
