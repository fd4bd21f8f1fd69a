variable "region" {
  description = "AWS region of the cluster, the database and the function."
  type        = string
}

variable "cluster_name" {
  description = "Name of the EKS cluster (for the kubernetes provider's token, and the function's access entry when eks_access_group is set)."
  type        = string
}

variable "cluster_endpoint" {
  description = "URL of the cluster's API server, as the function reaches it (a public endpoint, or a private one with the function in the VPC)."
  type        = string
}

variable "cluster_ca_certificate" {
  description = "PEM of the cluster's CA."
  type        = string
}

variable "api_server_cidrs" {
  description = "Addresses of the API server's endpoints as pods reach them (`kubectl get endpoints kubernetes -n default`), which build pods may not reach."
  type        = list(string)
}

variable "api_service_cidr" {
  description = "Address of the kubernetes Service (10.100.0.1/32 on EKS by default)."
  type        = string
  default     = "10.100.0.1/32"
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets for the database (two availability zones at least)."
  type        = list(string)
}

variable "node_security_group_id" {
  description = "Security group of the cluster's nodes (the database accepts them only)."
  type        = string
}

variable "zone_id" {
  description = "Route 53 hosted zone of build_domain."
  type        = string
}

variable "build_domain" {
  description = "RUNBOAT_BUILD_DOMAIN: builds answer at <slug>.<build_domain>."
  type        = string
}

variable "load_balancer" {
  description = "The ingress controller's load balancer: its DNS name and, for alias records, its hosted zone ID."
  type = object({
    dns_name = string
    zone_id  = optional(string)
  })
}

variable "namespace" {
  description = "RUNBOAT_BUILD_NAMESPACE."
  type        = string
  default     = "runboat-builds"
}

variable "repos" {
  description = "RUNBOAT_REPOS, the JSON list of rules (see the README's configuration)."
  type        = string
}

variable "base_url" {
  description = "RUNBOAT_BASE_URL: where the console is (commit statuses link to it). The function URL is known only after a first apply: set it then, or use a domain of yours in front of it."
  type        = string
  default     = "http://localhost:8000"
}

variable "quotas" {
  description = "RUNBOAT_MAX_INITIALIZING, RUNBOAT_MAX_STARTED, RUNBOAT_MAX_DEPLOYED (the jobs' config must say the same)."
  type = object({
    max_initializing = number
    max_started      = number
    max_deployed     = number
  })
  default = {
    max_initializing = 2
    max_started      = 6
    max_deployed     = 10
  }
}

variable "function_zip" {
  description = "Path of dist/runboat-function-arm64.zip from `make package`."
  type        = string
}

variable "eks_access_group" {
  description = "Also give the function access through its IAM role (an EKS access entry mapped to this Kubernetes group, bound to its Role). Null: the ServiceAccount token only."
  type        = string
  default     = null
}

variable "github_webhook_secret" {
  description = "RUNBOAT_GITHUB_WEBHOOK_SECRET: the secret of the GitHub webhook."
  type        = string
  sensitive   = true
}

variable "github_token" {
  description = "RUNBOAT_GITHUB_TOKEN: the token of commit statuses (function and jobs)."
  type        = string
  sensitive   = true
}

variable "admin_password" {
  description = "RUNBOAT_API_ADMIN_PASSWD: the console's admin password (user admin)."
  type        = string
  sensitive   = true
}

variable "tags" {
  description = "Tags of the AWS resources."
  type        = map(string)
  default     = { "app" = "runboat" }
}
