output "records" {
  description = "The names of the wildcard records made (*.<domain>, *.mail.<domain>)."
  value       = sort(values(local.names))
}
