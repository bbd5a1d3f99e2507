from django import template

from audit.filters import may_read_audit

register = template.Library()


@register.simple_tag
def may_read_audit_log(user):
    """For the navigation bar: does the user administer a registry (or everything)?"""
    return may_read_audit(user)
