variable "zone_id" {
  description = "ID of the Route 53 hosted zone that holds domain."
  type        = string
}

variable "domain" {
  description = "The build domain (RUNBOAT_BUILD_DOMAIN): builds answer at <slug>.<domain>, their mailhog at <slug>.mail.<domain>."
  type        = string
}

variable "load_balancer" {
  description = "The ingress controller's load balancer. With zone_id (the load balancer's own hosted zone, e.g. an NLB's canonical hosted zone ID), the records are aliases (no charge for the queries); without it, CNAMEs to dns_name."
  type = object({
    dns_name = string
    zone_id  = optional(string)
  })
}

variable "ttl" {
  description = "TTL of the CNAME records, in seconds (aliases take the target's)."
  type        = number
  default     = 300
}
