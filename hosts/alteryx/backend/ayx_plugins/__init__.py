"""Alteryx Designer plugins of the tableau-publisher workspace."""
from .publish_to_tableau import PublishToTableau

__all__ = ["PublishToTableau"]
