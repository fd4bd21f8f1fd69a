locals {
  # The name of each secret's parameter, given to the function in
  # <VARIABLE>_SSM_PARAMETER; the function reads them at init.
  parameter_names = {
    for k in var.secret_names : k => "/${var.name}/${lower(replace(trimprefix(k, "RUNBOAT_"), "_", "-"))}"
  }
  # GOMEMLIMIT: the Go runtime collects garbage harder near 80 % of the
  # function's memory instead of letting its heap double first (a console
  # listing thousands of builds); var.environment may set another.
  environment = merge({
    GOMEMLIMIT = "${floor(var.memory_mb * 0.8)}MiB"
    }, var.environment, {
    for k, p in local.parameter_names : "${k}_SSM_PARAMETER" => p
    }, {
    RUNBOAT_RESPONSE_STREAMING = tostring(var.response_streaming)
  })
  # Lambda counts the keys and the values of the environment: 4 KB in all.
  environment_bytes = sum(concat([0], [for k, v in local.environment : length(k) + length(v)]))
}

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_ssm_parameter" "secret" {
  for_each = local.parameter_names

  name   = each.value
  type   = "SecureString"
  value  = var.secrets[each.key]
  key_id = var.kms_key_arn
  # A kubeconfig with its CA and token is close to the standard tier's 4 KB:
  # the advanced tier is taken only when a value needs it.
  tier = "Intelligent-Tiering"
  tags = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

# Only what the function uses: writing its logs, reading its own
# parameters (and decrypting them with a key of the operator's).
data "aws_iam_policy_document" "function" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }
  statement {
    sid       = "OwnSecrets"
    actions   = ["ssm:GetParameter", "ssm:GetParameters"]
    resources = [for p in aws_ssm_parameter.secret : p.arn]
  }
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "DecryptOwnSecrets"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role" "function" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "function" {
  name   = "${var.name}-own"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}

resource "aws_lambda_function" "function" {
  function_name = var.name
  role          = aws_iam_role.function.arn
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.architecture]

  filename         = var.zip_path
  source_code_hash = filebase64sha256(var.zip_path)

  memory_size                    = var.memory_mb
  timeout                        = var.timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency == null ? -1 : var.reserved_concurrency

  environment {
    variables = local.environment
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function.name
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.function]

  lifecycle {
    precondition {
      condition     = local.environment_bytes <= 4096
      error_message = "The function's environment takes ${local.environment_bytes} bytes; Lambda allows 4096. Shorten RUNBOAT_REPOS or move settings out of it."
    }
    precondition {
      condition     = length(setsubtract(var.secret_names, keys(var.secrets))) == 0
      error_message = "secrets lacks a value for one of secret_names."
    }
  }
}

# The function URL: anyone may call it; the webhook's HMAC signature and
# the console's admin password are the authentication.
resource "aws_lambda_function_url" "function" {
  function_name      = aws_lambda_function.function.function_name
  authorization_type = "NONE"
  invoke_mode        = var.response_streaming ? "RESPONSE_STREAM" : "BUFFERED"
}

resource "aws_lambda_permission" "url" {
  statement_id           = "RunboatPublicFunctionURL"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.function.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "url_invoke" {
  statement_id             = "RunboatInvokeViaFunctionURL"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.function.function_name
  principal                = "*"
  invoked_via_function_url = true
}

# On EKS: the function's IAM role as a member of a Kubernetes group, which
# modules/namespace binds to the function's Role (function_group).
resource "aws_eks_access_entry" "function" {
  count = var.eks_access_entry == null ? 0 : 1

  cluster_name      = var.eks_access_entry.cluster_name
  principal_arn     = aws_iam_role.function.arn
  kubernetes_groups = [var.eks_access_entry.group]
  type              = "STANDARD"
  tags              = var.tags
}
