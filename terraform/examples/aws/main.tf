# Everything of an installation on AWS, for a cluster, VPC and hosted zone
# that exist: the namespace with the function's identity, the builds'
# PostgreSQL, their wildcard records, and the function with its URL.
# The CronJobs are installed afterwards, with `kubectl apply -k` of an
# overlay of manifests/ (they use the Secret runboat-secrets made here).

provider "aws" {
  region = var.region
}

provider "kubernetes" {
  host                   = var.cluster_endpoint
  cluster_ca_certificate = var.cluster_ca_certificate
  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", var.cluster_name, "--region", var.region]
  }
}

module "database" {
  source = "../../modules/database"

  vpc_id                 = var.vpc_id
  subnet_ids             = var.private_subnet_ids
  node_security_group_id = var.node_security_group_id
  tags                   = var.tags
}

module "namespace" {
  source = "../../modules/namespace"

  name                   = var.namespace
  quotas                 = var.quotas
  api_server_cidrs       = var.api_server_cidrs
  api_service_cidr       = var.api_service_cidr
  cluster_endpoint       = var.cluster_endpoint
  cluster_ca_certificate = var.cluster_ca_certificate
  function_group         = var.eks_access_group
  github_token           = var.github_token
  build_secret_env       = module.database.build_secret_env
}

module "dns" {
  source = "../../modules/dns"

  zone_id       = var.zone_id
  domain        = var.build_domain
  load_balancer = var.load_balancer
}

module "function" {
  source = "../../modules/function"

  zip_path = var.function_zip
  environment = {
    RUNBOAT_REPOS            = var.repos
    RUNBOAT_BUILD_NAMESPACE  = module.namespace.namespace
    RUNBOAT_BUILD_DOMAIN     = var.build_domain
    RUNBOAT_BASE_URL         = var.base_url
    RUNBOAT_BUILD_ENV        = jsonencode(module.database.build_env)
    RUNBOAT_MAX_INITIALIZING = tostring(var.quotas.max_initializing)
    RUNBOAT_MAX_STARTED      = tostring(var.quotas.max_started)
    RUNBOAT_MAX_DEPLOYED     = tostring(var.quotas.max_deployed)
    RUNBOAT_API_ADMIN_USER   = "admin"
  }
  secrets = {
    RUNBOAT_GITHUB_WEBHOOK_SECRET = var.github_webhook_secret
    RUNBOAT_GITHUB_TOKEN          = var.github_token
    RUNBOAT_API_ADMIN_PASSWD      = var.admin_password
    RUNBOAT_KUBECONFIG_DATA       = module.namespace.function_kubeconfig
    RUNBOAT_BUILD_SECRET_ENV      = jsonencode(module.database.build_secret_env)
  }
  eks_access_entry = var.eks_access_group == null ? null : {
    cluster_name = var.cluster_name
    group        = var.eks_access_group
  }
  tags = var.tags
}
