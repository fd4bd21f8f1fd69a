terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # invoked_via_function_url of aws_lambda_permission (6.29.0): function
      # URLs made since October 2025 need lambda:InvokeFunction granted that
      # way too.
      version = ">= 6.29"
    }
  }
}
