"""Helpers the sales and stock pipelines share: editing this file redeploys both."""


def headline(text: str) -> str:
    return text.strip().upper()
