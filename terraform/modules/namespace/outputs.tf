output "namespace" {
  description = "The builds namespace (RUNBOAT_BUILD_NAMESPACE)."
  value       = kubernetes_namespace.builds.metadata[0].name
}

output "function_service_account" {
  description = "The function's ServiceAccount, in the namespace."
  value       = kubernetes_service_account.function.metadata[0].name
}

output "function_role" {
  description = "The function's Role, which function_group is bound to as well."
  value       = kubernetes_role.function.metadata[0].name
}

output "function_token" {
  description = "The function's long-lived ServiceAccount token (a bearer token for the API server)."
  value       = local.token
  sensitive   = true
}

output "function_kubeconfig" {
  description = "A kubeconfig holding only the function's token, the API server's address and its CA, with the namespace as the context's: RUNBOAT_KUBECONFIG_DATA of the function (modules/function keeps it in SSM)."
  value       = local.kubeconfig
  sensitive   = true
}
