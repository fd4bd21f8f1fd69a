terraform {
  required_version = ">= 1.6"

  required_providers {
    kubernetes = {
      source = "hashicorp/kubernetes"
      # Checked with 1.13.4, the newest release the Go module proxy serves
      # (built with two fixes for Kubernetes 1.24 and later: see
      # shared/testenv/terraform/toolchain.sh). The resources used here have
      # the same arguments in the 2.x and 3.x releases.
      version = ">= 1.13.4, < 4.0.0"
    }
  }
}
