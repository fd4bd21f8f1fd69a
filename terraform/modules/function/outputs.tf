output "function_url" {
  description = "The function URL: the GitHub webhook goes to <function_url>webhooks/github, the console is at <function_url> (RUNBOAT_BASE_URL)."
  value       = aws_lambda_function_url.function.function_url
}

output "function_name" {
  description = "Name of the Lambda function."
  value       = aws_lambda_function.function.function_name
}

output "role_arn" {
  description = "ARN of the function's IAM role."
  value       = aws_iam_role.function.arn
}

output "parameter_names" {
  description = "The SSM parameters of the secrets, by variable name."
  value       = local.parameter_names
}
