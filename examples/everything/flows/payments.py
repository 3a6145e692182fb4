"""The payments team's flows: each payment Stripe reports is recorded as it arrives, and the day is
reconciled when the bank's nightly export has landed. Both start from events that Prefect Cloud webhooks
make of the senders' requests (see flows.yaml: webhooks and triggers)."""

from __future__ import annotations

import os

from prefect import flow, get_run_logger
from prefect_aws import S3Bucket


@flow
def record_payment(payment_id: str, amount_cents: int = 0) -> str:
    """Record one payment Stripe reported (`stripe.payment.succeeded`)."""
    get_run_logger().info("payment %s: %s cents, via %s", payment_id, amount_cents, os.environ.get("PAYMENTS_API"))
    return payment_id


@flow
def reconcile(export: str = "latest", tolerance_cents: int = 0) -> str:
    """Match the day's recorded payments against the bank's export (`bank.export.finished`), read from the
    environment's bucket (the `payments-exports` block of flows.yaml)."""
    exports = S3Bucket.load("payments-exports")
    name = export.removeprefix("bank.export.")
    get_run_logger().info("reconciling %s/%s/%s within %s cents", exports.bucket_name, exports.bucket_folder, name,
                          tolerance_cents)
    return name
