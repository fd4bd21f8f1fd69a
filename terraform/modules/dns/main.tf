locals {
  # A wildcard covers one label only: the builds' mailhog answers at
  # <slug>.mail.<domain>, which *.<domain> does not cover.
  names = {
    builds  = "*.${var.domain}"
    mailhog = "*.mail.${var.domain}"
  }
  alias = var.load_balancer.zone_id != null
}

resource "aws_route53_record" "alias" {
  for_each = local.alias ? local.names : {}

  zone_id = var.zone_id
  name    = each.value
  type    = "A"

  alias {
    name                   = var.load_balancer.dns_name
    zone_id                = var.load_balancer.zone_id
    evaluate_target_health = false
  }
}

resource "aws_route53_record" "cname" {
  for_each = local.alias ? {} : local.names

  zone_id = var.zone_id
  name    = each.value
  type    = "CNAME"
  ttl     = var.ttl
  records = [var.load_balancer.dns_name]
}
