locals {
  # The function's Role is written once, in manifests/function/role.yaml
  # (each rule with who needs it), which kustomize users apply as it is.
  role_file     = coalesce(var.function_role_file, "${path.module}/../../../manifests/function/role.yaml")
  function_role = yamldecode(file(local.role_file))

  function_name = "runboat-function"

  q        = var.quotas
  started  = var.build_size.started
  init     = var.build_size.initializing
  headroom = 1 + var.headroom_percent / 100

  # Quantities as the API server writes them back (2000m is "2", 2048Mi
  # "2Gi"), so that a plan after an apply shows no change.
  cpu_m = {
    requests      = ceil((local.q.max_started * local.started.cpu_request_m + local.q.max_initializing * local.init.cpu_request_m) * local.headroom)
    limits        = ceil((local.q.max_started * local.started.cpu_limit_m + local.q.max_initializing * local.init.cpu_limit_m) * local.headroom)
    default       = var.container_defaults.cpu_limit_m
    default_req   = var.container_defaults.cpu_request_m
    container_max = var.container_defaults.max_cpu_m
  }
  memory_mi = {
    requests      = ceil((local.q.max_started * local.started.memory_request_mi + local.q.max_initializing * local.init.memory_request_mi) * local.headroom)
    limits        = ceil((local.q.max_started * local.started.memory_limit_mi + local.q.max_initializing * local.init.memory_limit_mi) * local.headroom)
    storage       = local.q.max_deployed * var.build_size.storage_mi
    default       = var.container_defaults.memory_limit_mi
    default_req   = var.container_defaults.memory_request_mi
    container_max = var.container_defaults.max_memory_mi
  }
  cpu = { for k, m in local.cpu_m : k => m % 1000 == 0 ? "${m / 1000}" : "${m}m" }
  memory = { for k, mi in local.memory_mi : k => (
    mi % 1048576 == 0 ? "${mi / 1048576}Ti" : mi % 1024 == 0 ? "${mi / 1024}Gi" : "${mi}Mi"
  ) }

  # Pods at most: the started builds, the init Jobs, as many cleanup Jobs,
  # and the three jobs' own pods.
  max_pods = local.q.max_started + 2 * local.q.max_initializing + 3

  # Build pods (they carry the label runboat/build, init and cleanup Jobs'
  # pods included) run code from pull requests: they may go anywhere but to
  # the API server and the cloud metadata endpoint.
  blocked = distinct(concat(
    ["169.254.169.254/32", "fd00:ec2::254/128"],
    var.api_server_cidrs,
    var.api_service_cidr == null ? [] : [var.api_service_cidr],
    var.blocked_cidrs,
  ))
  blocked_v4 = [for c in local.blocked : c if !strcontains(c, ":")]
  blocked_v6 = [for c in local.blocked : c if strcontains(c, ":")]
}

resource "kubernetes_namespace" "builds" {
  metadata {
    name = var.name
    labels = merge(var.labels, {
      "app.kubernetes.io/part-of" = "runboat"
    })
  }
}

resource "kubernetes_resource_quota" "builds" {
  metadata {
    name      = "runboat"
    namespace = kubernetes_namespace.builds.metadata[0].name
  }
  spec {
    hard = {
      "pods"                   = tostring(ceil(local.max_pods * local.headroom))
      "requests.cpu"           = local.cpu.requests
      "requests.memory"        = local.memory.requests
      "limits.cpu"             = local.cpu.limits
      "limits.memory"          = local.memory.limits
      "persistentvolumeclaims" = tostring(local.q.max_deployed)
      "requests.storage"       = local.memory.storage
    }
  }
}

resource "kubernetes_limit_range" "builds" {
  metadata {
    name      = "runboat"
    namespace = kubernetes_namespace.builds.metadata[0].name
  }
  spec {
    limit {
      type = "Container"
      default = {
        cpu    = local.cpu.default
        memory = local.memory.default
      }
      default_request = {
        cpu    = local.cpu.default_req
        memory = local.memory.default_req
      }
      max = {
        cpu    = local.cpu.container_max
        memory = local.memory.container_max
      }
    }
  }
}

resource "kubernetes_network_policy" "builds_egress" {
  metadata {
    name      = "runboat-builds-egress"
    namespace = kubernetes_namespace.builds.metadata[0].name
  }
  spec {
    pod_selector {
      match_expressions {
        key      = "runboat/build"
        operator = "Exists"
      }
    }
    policy_types = ["Egress"]
    egress {
      to {
        ip_block {
          cidr   = "0.0.0.0/0"
          except = local.blocked_v4
        }
      }
      to {
        ip_block {
          cidr   = "::/0"
          except = local.blocked_v6
        }
      }
    }
  }
}

# The function's identity: it runs outside the cluster (a Lambda) and acts
# as this ServiceAccount, with the long-lived token below.
resource "kubernetes_service_account" "function" {
  metadata {
    name      = local.function_name
    namespace = kubernetes_namespace.builds.metadata[0].name
  }
  automount_service_account_token = false
}

resource "kubernetes_role" "function" {
  metadata {
    name      = local.function_role.metadata.name
    namespace = kubernetes_namespace.builds.metadata[0].name
  }
  dynamic "rule" {
    for_each = local.function_role.rules
    content {
      api_groups     = rule.value.apiGroups
      resources      = rule.value.resources
      verbs          = rule.value.verbs
      resource_names = lookup(rule.value, "resourceNames", null)
    }
  }

  lifecycle {
    precondition {
      condition     = local.function_role.kind == "Role" && local.function_role.metadata.name == local.function_name
      error_message = "${local.role_file} must hold one Role named ${local.function_name}."
    }
  }
}

resource "kubernetes_role_binding" "function" {
  metadata {
    name      = local.function_name
    namespace = kubernetes_namespace.builds.metadata[0].name
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role.function.metadata[0].name
  }
  subject {
    kind      = "ServiceAccount"
    name      = kubernetes_service_account.function.metadata[0].name
    namespace = kubernetes_namespace.builds.metadata[0].name
  }
  dynamic "subject" {
    for_each = var.function_group == null ? [] : [var.function_group]
    content {
      api_group = "rbac.authorization.k8s.io"
      kind      = "Group"
      name      = subject.value
    }
  }
}

# The function's credential: a token valid until this Secret is deleted
# (taint or replace it to rotate the token). The token controller fills in
# "token", "ca.crt" and "namespace".
resource "kubernetes_secret" "function_token" {
  metadata {
    name      = "${local.function_name}-token"
    namespace = kubernetes_namespace.builds.metadata[0].name
    annotations = {
      "kubernetes.io/service-account.name" = kubernetes_service_account.function.metadata[0].name
    }
  }
  type = "kubernetes.io/service-account-token"

  lifecycle {
    # Filled in by the token controller, not by this configuration.
    ignore_changes = [data]
  }
}

# What the CronJobs of manifests/ require.
resource "kubernetes_secret" "runboat" {
  metadata {
    name      = "runboat-secrets"
    namespace = kubernetes_namespace.builds.metadata[0].name
  }
  data = {
    RUNBOAT_GITHUB_TOKEN     = var.github_token
    RUNBOAT_BUILD_SECRET_ENV = jsonencode(var.build_secret_env)
  }
}

# The token Secret as the token controller filled it in, read once it
# exists (depends_on defers the read to the apply that creates it).
data "kubernetes_secret" "function_token" {
  metadata {
    name      = kubernetes_secret.function_token.metadata[0].name
    namespace = kubernetes_secret.function_token.metadata[0].namespace
  }
  depends_on = [kubernetes_secret.function_token]
}

locals {
  token = data.kubernetes_secret.function_token.data["token"]
  ca    = coalesce(var.cluster_ca_certificate, data.kubernetes_secret.function_token.data["ca.crt"])
  kubeconfig = yamlencode({
    apiVersion = "v1"
    kind       = "Config"
    clusters = [{
      name = "runboat"
      cluster = {
        server                       = var.cluster_endpoint
        "certificate-authority-data" = base64encode(local.ca)
      }
    }]
    users = [{
      name = local.function_name
      user = { token = local.token }
    }]
    contexts = [{
      name = "runboat"
      context = {
        cluster   = "runboat"
        user      = local.function_name
        namespace = kubernetes_namespace.builds.metadata[0].name
      }
    }]
    "current-context" = "runboat"
  })
}
