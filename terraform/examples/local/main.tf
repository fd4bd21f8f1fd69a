# The Kubernetes part of an installation (modules/namespace) applied to a
# cluster reached through a kubeconfig file: the local cluster of
# `make cluster` (`make -s cluster-env` prints its kubeconfig path), or any
# other. The tests apply it to a fresh namespace, check the function's
# credential, then destroy it.

terraform {
  required_version = ">= 1.6"

  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 1.13.4, < 4.0.0"
    }
  }
}

variable "kubeconfig_path" {
  description = "The kubeconfig file of the cluster (its current context is used)."
  type        = string
}

variable "cluster_endpoint" {
  description = "URL of the API server, written into the function's kubeconfig (for the local cluster: the server of its kubeconfig)."
  type        = string
}

variable "namespace" {
  description = "Name of the builds namespace to create."
  type        = string
  default     = "runboat-builds"
}

variable "github_token" {
  description = "RUNBOAT_GITHUB_TOKEN of the jobs; empty: no commit statuses."
  type        = string
  default     = ""
  sensitive   = true
}

provider "kubernetes" {
  config_path = var.kubeconfig_path
}

module "namespace" {
  source = "../../modules/namespace"

  name             = var.namespace
  cluster_endpoint = var.cluster_endpoint
  github_token     = var.github_token
  build_secret_env = {
    PGPASSWORD = "local"
  }
}

output "namespace" {
  description = "The builds namespace."
  value       = module.namespace.namespace
}

output "function_kubeconfig" {
  description = "The function's kubeconfig (its token only)."
  value       = module.namespace.function_kubeconfig
  sensitive   = true
}
