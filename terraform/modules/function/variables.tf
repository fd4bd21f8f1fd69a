variable "name" {
  description = "Name of the Lambda function; also the prefix of its IAM role, log group and SSM parameters (/<name>/...)."
  type        = string
  default     = "runboat"
}

variable "zip_path" {
  description = "The function's package from `make package`: dist/runboat-function-<architecture>.zip (a `bootstrap` for provided.al2023)."
  type        = string
}

variable "architecture" {
  description = "arm64 (cheaper per GB-second) or x86_64; must match the zip (runboat-function-arm64.zip or -amd64.zip)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture is arm64 or x86_64."
  }
}

variable "memory_mb" {
  description = "Memory, in MB (Lambda gives CPU in proportion). A delivery renders kubefiles and makes a few API calls: 256 MB keeps it well under a second."
  type        = number
  default     = 256
}

variable "timeout_seconds" {
  description = "Longest run of one invocation, in seconds. A delivery takes about a second; a console event stream stays open up to this long (the browser reconnects)."
  type        = number
  default     = 60
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for (and capped to) the function. Null: unreserved, the account's pool. A cap bounds what a flood of deliveries costs."
  type        = number
  default     = null
}

variable "response_streaming" {
  description = "The function URL streams answers (invoke mode RESPONSE_STREAM, and RUNBOAT_RESPONSE_STREAMING for the function, set together): the console's live events (/api/v1/build-events) stream. False: BUFFERED, the console polls."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days the function's logs are kept in CloudWatch."
  type        = number
  default     = 14
}

variable "environment" {
  description = "The function's settings that are not secret (RUNBOAT_REPOS, RUNBOAT_BUILD_NAMESPACE, RUNBOAT_BUILD_DOMAIN, RUNBOAT_BASE_URL, RUNBOAT_MAX_*, RUNBOAT_BUILD_ENV...). Lambda allows 4 KB of environment in all: secrets are never here, and a long RUNBOAT_REPOS may not fit."
  type        = map(string)
}

variable "secrets" {
  description = "The function's secrets, by variable name: RUNBOAT_GITHUB_WEBHOOK_SECRET, RUNBOAT_GITHUB_TOKEN, RUNBOAT_API_ADMIN_PASSWD, RUNBOAT_KUBECONFIG_DATA (modules/namespace's function_kubeconfig), RUNBOAT_BUILD_SECRET_ENV. Each is kept in an SSM SecureString parameter; the function gets only the parameter's name, in <VARIABLE>_SSM_PARAMETER."
  type        = map(string)
  sensitive   = true
}

variable "secret_names" {
  description = "The keys of secrets (the variable names), given apart because a sensitive map's keys cannot name resources."
  type        = set(string)
  default = [
    "RUNBOAT_GITHUB_WEBHOOK_SECRET",
    "RUNBOAT_GITHUB_TOKEN",
    "RUNBOAT_API_ADMIN_PASSWD",
    "RUNBOAT_KUBECONFIG_DATA",
    "RUNBOAT_BUILD_SECRET_ENV",
  ]
}

variable "kms_key_arn" {
  description = "KMS key of the SSM parameters. Null: the account's AWS managed key (aws/ssm)."
  type        = string
  default     = null
}

variable "eks_access_entry" {
  description = "On EKS, also map the function's IAM role to a Kubernetes group (give the same group to modules/namespace's function_group, bound to the function's Role). The function must then make its own token from its IAM credentials (a Lambda has no aws CLI). Null: the ServiceAccount token in RUNBOAT_KUBECONFIG_DATA only."
  type = object({
    cluster_name = string
    group        = string
  })
  default = null
}

variable "tags" {
  description = "Tags of what is created."
  type        = map(string)
  default     = {}
}
