variable "name" {
  description = "Name of the builds namespace (RUNBOAT_BUILD_NAMESPACE): the builds, the jobs' CronJobs and the function's identity live there."
  type        = string
  default     = "runboat-builds"
}

variable "labels" {
  description = "Extra labels of the namespace."
  type        = map(string)
  default     = {}
}

variable "quotas" {
  description = "The runboat quotas (RUNBOAT_MAX_INITIALIZING, RUNBOAT_MAX_STARTED, RUNBOAT_MAX_DEPLOYED); the ResourceQuota is sized from them. Give the jobs the same values."
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

variable "build_size" {
  description = "What one build takes (defaults: the Odoo kubefiles). started: the requests and limits of a started build's pod, all containers together; initializing: those of an init Job's pod; storage_mi: the volume claim of one deployed build. CPU in millicores, memory and storage in MiB."
  type = object({
    started = object({
      cpu_request_m     = number
      memory_request_mi = number
      cpu_limit_m       = number
      memory_limit_mi   = number
    })
    initializing = object({
      cpu_request_m     = number
      memory_request_mi = number
      cpu_limit_m       = number
      memory_limit_mi   = number
    })
    storage_mi = number
  })
  default = {
    # odoo (50m/100Mi, limits 800m/1Gi) and mailhog (50m/100Mi, 100m/200Mi)
    started = {
      cpu_request_m     = 100
      memory_request_mi = 200
      cpu_limit_m       = 900
      memory_limit_mi   = 1224
    }
    # the init Job's one container: 1 CPU, 1 GiB, requests equal to limits
    initializing = {
      cpu_request_m     = 1000
      memory_request_mi = 1024
      cpu_limit_m       = 1000
      memory_limit_mi   = 1024
    }
    # the data volume claim (limit 250Mi)
    storage_mi = 250
  }
}

variable "headroom_percent" {
  description = "Added to the sums of the quota, for the cleanup Jobs, the jobs' own pods and a rollout's extra pod."
  type        = number
  default     = 25

  validation {
    condition     = var.headroom_percent >= 0
    error_message = "headroom_percent must not be negative."
  }
}

variable "container_defaults" {
  description = "The LimitRange: requests and limits given to a container of the namespace that sets none (a quota on CPU and memory refuses such a pod otherwise), and the most one container may ask for. CPU in millicores, memory in MiB."
  type = object({
    cpu_request_m     = number
    memory_request_mi = number
    cpu_limit_m       = number
    memory_limit_mi   = number
    max_cpu_m         = number
    max_memory_mi     = number
  })
  default = {
    cpu_request_m     = 50
    memory_request_mi = 64
    cpu_limit_m       = 500
    memory_limit_mi   = 512
    max_cpu_m         = 2000
    max_memory_mi     = 2048
  }
}

variable "api_server_cidrs" {
  description = "Addresses of the Kubernetes API server as pods reach it after the Service is resolved: its endpoints (on EKS, the private addresses of the control plane's network interfaces in the VPC; `kubectl get endpoints kubernetes -n default`). Build pods may not reach them."
  type        = list(string)
  default     = []
}

variable "api_service_cidr" {
  description = "Address of the `kubernetes` Service (the first address of the Service range, e.g. 10.100.0.1/32 on EKS), which build pods may not reach either."
  type        = string
  default     = null
}

variable "blocked_cidrs" {
  description = "Other destinations build pods may not reach, beside the API server and the cloud metadata endpoint (169.254.169.254/32, fd00:ec2::254/128), which are always blocked."
  type        = list(string)
  default     = []
}

variable "function_role_file" {
  description = "The Role of the function, as YAML (one Role named runboat-function). Default: manifests/function/role.yaml of this repository, so that its rules are written once."
  type        = string
  default     = null
}

variable "function_group" {
  description = "A Kubernetes group also bound to the function's Role, e.g. the group an EKS access entry maps the function's IAM role to (modules/function, eks_access_entry). Null: the ServiceAccount only."
  type        = string
  default     = null
}

variable "cluster_endpoint" {
  description = "URL of the API server as the function reaches it (https://...), written into the function's kubeconfig."
  type        = string
}

variable "cluster_ca_certificate" {
  description = "PEM of the CA of the API server for the function's kubeconfig. Null: the one the token controller puts in the token Secret (the cluster's CA)."
  type        = string
  default     = null
}

variable "github_token" {
  description = "RUNBOAT_GITHUB_TOKEN of the jobs (commit statuses), in the Secret runboat-secrets. Empty: anonymous calls, no statuses."
  type        = string
  default     = ""
  sensitive   = true
}

variable "build_secret_env" {
  description = "RUNBOAT_BUILD_SECRET_ENV of the jobs, in the Secret runboat-secrets: variables every build gets as a Secret (e.g. modules/database's build_secret_env). Readable by anyone who can open a pull request."
  type        = map(string)
  default     = {}
  sensitive   = true
}
