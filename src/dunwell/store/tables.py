"""The schema, as SQLAlchemy Core tables. Alembic migrations mirror this file.

Money is always an integer amount in minor units beside its ISO currency
code; every moment is UTC. Every row that belongs to a merchant carries
``site_id`` so that each query can be scoped to one site.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from dunwell.store.types import Id, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _id() -> Column[int]:
    return Column("id", Id, primary_key=True, autoincrement=True)


#: The rows under a lease (``ix_<table>_leased``): a handful at any moment.
LEASED = text("lease_owner IS NOT NULL")


def _leased(table: str) -> Index:
    """An index of only the leased rows, so a stopping worker finds its own at once."""
    return Index(f"ix_{table}_leased", "lease_owner", sqlite_where=LEASED, postgresql_where=LEASED)


def _site() -> Column[int]:
    return Column("site_id", Id, ForeignKey("sites.id"), nullable=False, index=True)


sites = Table(
    "sites",
    metadata,
    _id(),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("locale", String(16), nullable=False),
    Column("support_email", String(320)),
    # The sandbox test clock: when set, it is this site's "now".
    Column("clock_now", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("mode IN ('sandbox', 'live')", name="mode"),
)

api_keys = Table(
    "api_keys",
    metadata,
    _id(),
    _site(),
    Column("name", String(200), nullable=False),
    # Only a SHA-256 of the key is kept; keys are 32 random bytes, so a slow
    # password hash would add nothing but latency to every request.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("scope", String(8), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    CheckConstraint("scope IN ('read', 'write', 'admin')", name="scope"),
)

customers = Table(
    "customers",
    metadata,
    _id(),
    _site(),
    Column("external_id", String(200)),
    Column("first_name", String(200), nullable=False),
    Column("last_name", String(200), nullable=False),
    Column("email", String(320)),
    Column("phone", String(32)),
    Column("locale", String(16)),
    Column("time_zone", String(64)),
    Column("payday", String(16)),
    # Billing links issued before this moment no longer open (revocation).
    Column("links_revoked_at", UTCDateTime),
    # Marketing texts need this explicit opt-in; dunning never relies on it.
    Column("marketing_sms_opt_in_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("site_id", "external_id", name="uq_customers_site_external"),
    # An inbound text finds its sender by number: without this every text
    # (every webhook batch) would read all of the site's customers.
    Index("ix_customers_phone", "site_id", "phone"),
)

payment_methods = Table(
    "payment_methods",
    metadata,
    _id(),
    _site(),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("gateway", String(32), nullable=False),
    Column("token", String(255), nullable=False),
    # The gateway's own customer reference (Stripe needs cus_... beside pm_...).
    Column("gateway_customer", String(255)),
    Column("brand", String(32), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("exp_month", Integer, nullable=False),
    Column("exp_year", Integer, nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("detached_at", UTCDateTime),
)

products = Table(
    "products",
    metadata,
    _id(),
    _site(),
    Column("code", String(100), nullable=False),
    Column("name", String(200), nullable=False),
    Column("price_minor", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("site_id", "code", name="uq_products_site_code"),
    CheckConstraint("price_minor >= 0", name="price"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    _id(),
    _site(),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("interval_unit", String(8), nullable=False),
    Column("interval_count", Integer, nullable=False),
    Column("collection", String(16), nullable=False),
    Column("net_terms_days", Integer, nullable=False),
    # Renewal dates are computed from the anchor, never by adding to the last
    # date, so a subscription started on the 31st does not drift to the 28th.
    Column("anchor_at", UTCDateTime, nullable=False),
    Column("next_charge_at", UTCDateTime, nullable=False),
    # How many periods have been invoiced; the renewal invoice of period N is
    # unique, so a crashed renewal can never bill the same period twice.
    Column("periods_billed", Integer, nullable=False),
    # The billing system's id when Dunwell mirrors it (Stripe: sub_...).
    Column("external_id", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("canceled_at", UTCDateTime),
    # Who paused a paused subscription: "dunning" (a final action) or
    # "merchant" (the API or the dashboard). Paying the debt brings back only
    # the first kind; NULL (paused before this was kept) counts as dunning.
    Column("paused_by", String(16)),
    CheckConstraint(
        "status IN ('active', 'past_due', 'unpaid', 'paused', 'canceled')", name="status"
    ),
    CheckConstraint("interval_unit IN ('day', 'week', 'month', 'year')", name="interval_unit"),
    Index("ix_subscriptions_due", "status", "next_charge_at"),
    # The concierge's scans: new subscriptions (welcome), cancellations.
    Index("ix_subscriptions_created_at", "created_at"),
    Index("ix_subscriptions_canceled_at", "canceled_at"),
    # NULLs do not collide, so only mirrored rows are constrained.
    Index("ix_subscriptions_external", "site_id", "external_id", unique=True),
)

subscription_items = Table(
    "subscription_items",
    metadata,
    _id(),
    _site(),
    Column("subscription_id", Id, ForeignKey("subscriptions.id"), nullable=False, index=True),
    Column("product_id", Id, ForeignKey("products.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_minor", Integer, nullable=False),
    # Set for an add-on to one order only (the concierge's "add a mug to my
    # next order"): the item is billed in that period and no other.
    Column("one_time_period", Integer),
    CheckConstraint("quantity > 0", name="quantity"),
)

invoices = Table(
    "invoices",
    metadata,
    _id(),
    _site(),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("subscription_id", Id, ForeignKey("subscriptions.id"), index=True),
    Column("period", Integer),
    Column("number", String(64), nullable=False),
    # The billing system's id when Dunwell mirrors it (Stripe: in_...).
    Column("external_id", String(255)),
    Column("collection", String(16), nullable=False),
    Column("net_terms_days", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_due_minor", Integer, nullable=False),
    Column("amount_paid_minor", Integer, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("paid_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    UniqueConstraint("site_id", "number", name="uq_invoices_site_number"),
    UniqueConstraint("subscription_id", "period", name="uq_invoices_subscription_period"),
    CheckConstraint("status IN ('open', 'past_due', 'paid', 'failed', 'voided')", name="status"),
    # The concierge's "order processed" scan reads recent payments.
    Index("ix_invoices_paid_at", "paid_at"),
    # A site's invoices in one status, in id order (the API's and the
    # dashboard's lists), and the metrics' count of invoices by status.
    Index("ix_invoices_site_status", "site_id", "status"),
    CheckConstraint("amount_due_minor >= 0", name="amount"),
    # NULLs do not collide, so only mirrored rows are constrained.
    Index("ix_invoices_external", "site_id", "external_id", unique=True),
)

payment_attempts = Table(
    "payment_attempts",
    metadata,
    _id(),
    _site(),
    Column("invoice_id", Id, ForeignKey("invoices.id"), nullable=False, index=True),
    Column("attempt_no", Integer, nullable=False),
    # Deterministic (invoice, attempt) key, also sent to the gateway, so a
    # crashed and rerun charge is the same charge.
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("gateway", String(32), nullable=False),
    Column("payment_method_id", Id, ForeignKey("payment_methods.id")),
    Column("amount_minor", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("decline_code", String(64)),
    Column("decline_class", String(8)),
    Column("gateway_reference", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
    UniqueConstraint("invoice_id", "attempt_no", name="uq_payment_attempts_invoice_attempt"),
    # A site's attempts by outcome, and the metrics' count of them.
    Index("ix_payment_attempts_site_status", "site_id", "status"),
)

dunning_policies = Table(
    "dunning_policies",
    metadata,
    _id(),
    _site(),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("site_id", "kind", name="uq_dunning_policies_site_kind"),
)

dunning_policy_versions = Table(
    "dunning_policy_versions",
    metadata,
    _id(),
    _site(),
    Column("policy_id", Id, ForeignKey("dunning_policies.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("config", JSON, nullable=False),
    Column("note", Text),
    Column("created_at", UTCDateTime, nullable=False),
    # Set when the first invoice enters dunning with this version; from then
    # on the version is frozen and a save writes a new one.
    Column("first_used_at", UTCDateTime),
    UniqueConstraint("policy_id", "version", name="uq_dunning_policy_versions_policy_version"),
)

dunning_cycles = Table(
    "dunning_cycles",
    metadata,
    _id(),
    _site(),
    Column("invoice_id", Id, ForeignKey("invoices.id"), nullable=False, unique=True),
    Column("policy_version_id", Id, ForeignKey("dunning_policy_versions.id")),
    Column("collection", String(16), nullable=False),
    Column("phase", String(16), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("attempts", Integer, nullable=False),
    Column("last_attempt_at", UTCDateTime),
    Column("hard_declined", Boolean, nullable=False),
    Column("steps_done_through", Integer, nullable=False),
    Column("retry_at", UTCDateTime),
    Column("transient_errors", Integer, nullable=False),
    Column("finalized", Boolean, nullable=False),
    Column("outcome", String(32)),
    Column("next_run_at", UTCDateTime),
    # Bumped by every change made outside the worker (mark paid, new card...):
    # a worker whose claim saw an older revision only records the facts of
    # its charge and leaves the schedule to the newer state.
    Column("revision", Integer, nullable=False, server_default="0"),
    Column("lease_owner", String(64)),
    Column("lease_until", UTCDateTime),
    _leased("dunning_cycles"),
    Column("updated_at", UTCDateTime, nullable=False),
    # Claims read the due cycles in time order; site_id lets the metrics
    # count each site's due cycles from the index alone.
    Index("ix_dunning_cycles_due", "next_run_at", "site_id"),
)

#: The events ``dunwell_outbox_failed_total`` counts (``ix_events_message_failed``).
#: Written as SQL, not a bound value, so the planner can match the partial index.
MESSAGE_FAILED = text("type = 'message.failed'")

events = Table(
    "events",
    metadata,
    _id(),
    _site(),
    Column("type", String(64), nullable=False),
    Column("customer_id", Id),
    Column("subscription_id", Id),
    Column("invoice_id", Id, index=True),
    Column("data", JSON, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    # A customer's timeline on the dashboard.
    Index("ix_events_site_customer", "site_id", "customer_id"),
    # The metrics' failure counter reads only these; the index stays small.
    Index(
        "ix_events_message_failed",
        "id",
        sqlite_where=MESSAGE_FAILED,
        postgresql_where=MESSAGE_FAILED,
    ),
)

#: An SMS Twilio accepted whose delivery report never came: not even "sent"
#: (``ix_outbox_unreported``, read by services/report_catch_up.py). A row is in
#: the index from its send until its first report, seconds in the usual case.
UNREPORTED_STATUSES = ("queued", "accepted", "scheduled", "sending")
UNREPORTED_SMS = text(
    "provider = 'twilio' AND status = 'sent' AND provider_status IN "
    f"({', '.join(repr(s) for s in UNREPORTED_STATUSES)})"
)

#: Messages that ended without going out: fewer than the sent ones, and the
#: ones a merchant asks for by status (``GET /v1/messages?status=failed``).
#: ``ix_outbox_not_sent`` holds them by site, status and id; the status is
#: in it because skipped texts (customers with no number) can be many.
#: Written as equalities joined by OR, not IN: SQLite uses a partial index
#: only when the query has one of its terms (``status = ?`` bound to
#: "failed" counts), and PostgreSQL proves either form.
NOT_SENT_STATUSES = ("failed", "skipped", "blocked", "canceled")
#: The channels the outbox's check constraint allows.
OUTBOX_CHANNELS = ("email", "sms", "webhook")
NOT_SENT = text(" OR ".join(f"status = '{status}'" for status in NOT_SENT_STATUSES))
#: Messages on their way: due or held (``pending``) or being handed to the
#: provider (``sending``). A merchant's page of them walked every message of
#: the site; ``ix_outbox_in_flight`` holds them by site, status and id, as
#: ``ix_outbox_not_sent`` does the others. A message is in it from when it
#: is queued until it is sent, so the outbox's bulk (sent, delivered) stays
#: out of it, and so does its history.
IN_FLIGHT_STATUSES = ("pending", "sending")
IN_FLIGHT = text(" OR ".join(f"status = '{status}'" for status in IN_FLIGHT_STATUSES))

outbox = Table(
    "outbox",
    metadata,
    _id(),
    _site(),
    Column("channel", String(16), nullable=False),
    # invoice, policy version, step day and channel: one message per step.
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("customer_id", Id),
    Column("invoice_id", Id),
    Column("template", String(100)),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    # Rendered when the message is written, so what is sent is what the
    # customer's situation was when the step was reached (see messaging docs).
    Column("recipient", String(320)),
    Column("locale", String(16)),
    Column("subject", Text),
    Column("body_text", Text),
    Column("body_html", Text),
    Column("segments", Integer),
    Column("encoding", String(8)),
    # Delivery: which transport took it, its id there and its last status.
    Column("provider", String(16)),
    Column("provider_id", String(64)),
    Column("provider_status", String(16)),
    Column("error_code", String(32)),
    Column("lease_owner", String(64)),
    Column("lease_until", UTCDateTime),
    _leased("outbox"),
    Column("delivered_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
    # transactional (dunning, order notices) or marketing: they need
    # different consent (see docs/compliance.md).
    Column("kind", String(16), nullable=False, server_default="transactional"),
    # Why an SMS is waiting (quiet hours, frequency cap, no credits).
    Column("held_reason", String(32)),
    CheckConstraint("channel IN ('email', 'sms', 'webhook')", name="channel"),
    # Claims read due messages by status and time; site_id and channel let
    # the metrics count messages by status from the index alone (a scan of
    # the rows would read every rendered body).
    Index("ix_outbox_pending", "status", "next_attempt_at", "site_id", "channel"),
    Index("ix_outbox_provider_id", "provider_id"),
    Index(
        "ix_outbox_unreported",
        "site_id",
        "sent_at",
        sqlite_where=UNREPORTED_SMS,
        postgresql_where=UNREPORTED_SMS,
    ),
    # The SMS frequency cap counts recent texts per number.
    Index("ix_outbox_recipient", "recipient", "channel"),
    # The concierge's failed-payment scan reads recent dunning emails.
    Index("ix_outbox_channel_created", "channel", "created_at"),
    # A customer's latest messages on the dashboard.
    Index("ix_outbox_site_customer", "site_id", "customer_id"),
    Index(
        "ix_outbox_not_sent",
        "site_id",
        "status",
        "id",
        sqlite_where=NOT_SENT,
        postgresql_where=NOT_SENT,
    ),
    Index(
        "ix_outbox_in_flight",
        "site_id",
        "status",
        "id",
        sqlite_where=IN_FLIGHT,
        postgresql_where=IN_FLIGHT,
    ),
)

message_attempts = Table(
    "message_attempts",
    metadata,
    _id(),
    _site(),
    Column("outbox_id", Id, ForeignKey("outbox.id"), nullable=False, index=True),
    Column("attempt_no", Integer, nullable=False),
    Column("provider", String(16), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    # sent | transient | unknown | permanent | reconciled; NULL while in
    # flight. A crash leaves it NULL and a lost answer makes it unknown:
    # both mark a send in doubt, looked up before the next one.
    Column("outcome", String(16)),
    Column("error_code", String(32)),
    Column("error", Text),
    Column("provider_id", String(64)),
    UniqueConstraint("outbox_id", "attempt_no"),
)

message_templates = Table(
    "message_templates",
    metadata,
    _id(),
    _site(),
    Column("name", String(100), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("locale", String(16), nullable=False),
    Column("subject", Text),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("channel IN ('email', 'sms')", name="channel"),
    UniqueConstraint("site_id", "name", "channel", "locale"),
)

site_channels = Table(
    "site_channels",
    metadata,
    _id(),
    _site(),
    Column("channel", String(8), nullable=False),
    Column("provider", String(16), nullable=False),
    # Non-secret settings in the clear; passwords and tokens only encrypted.
    Column("config", JSON, nullable=False),
    Column("secret", Text),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("channel IN ('email', 'sms')", name="channel"),
    UniqueConstraint("site_id", "channel"),
)

sandbox_messages = Table(
    "sandbox_messages",
    metadata,
    _id(),
    _site(),
    Column("channel", String(8), nullable=False),
    Column("direction", String(8), nullable=False),
    # Unique: delivering the same outbox row twice stores it once.
    Column("outbox_id", Id, unique=True),
    Column("to_addr", String(320), nullable=False),
    Column("from_addr", String(320), nullable=False),
    Column("subject", Text),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text),
    Column("message_id", String(200), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("direction IN ('outbound', 'inbound')", name="direction"),
)

sandbox_charges = Table(
    "sandbox_charges",
    metadata,
    _id(),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("token", String(255), nullable=False),
    Column("amount_minor", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("decline_code", String(64)),
    Column("reference", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


sms_settings = Table(
    "sms_settings",
    metadata,
    _id(),
    Column("site_id", Id, ForeignKey("sites.id"), nullable=False, unique=True),
    Column("settings", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

sms_credits = Table(
    "sms_credits",
    metadata,
    _id(),
    Column("site_id", Id, ForeignKey("sites.id"), nullable=False, unique=True),
    # Kept equal to the sum of the ledger; never negative.
    Column("balance", Integer, nullable=False),
    Column("low_balance_notified_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("balance >= 0", name="balance_not_negative"),
)

#: One row per site that has sent a text: how long the texts already handed
#: to its provider will wait there (services/sender_queue.py).
sms_sender_queues = Table(
    "sms_sender_queues",
    metadata,
    _id(),
    Column("site_id", Id, ForeignKey("sites.id"), nullable=False, unique=True),
    # When the provider's queue for the site's sender is expected to be
    # empty, on the site's clock: each admitted text moves it on by its
    # segments over the sender's rate.
    Column("clears_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

gateway_paces = Table(
    "gateway_paces",
    metadata,
    _id(),
    Column("gateway", String(40), nullable=False, unique=True),
    # The wall-clock time from which the gateway's next request may start,
    # shared by every worker: each reserves a few turns by moving it on.
    Column("next_start_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

sms_credit_ledger = Table(
    "sms_credit_ledger",
    metadata,
    _id(),
    _site(),
    Column("delta", Integer, nullable=False),
    Column("balance_after", Integer, nullable=False),
    # top_up | auto_refill | debit | refund
    Column("reason", String(16), nullable=False),
    Column("outbox_id", Id, ForeignKey("outbox.id")),
    # A message resent after a refund is charged again: its second charge.
    Column("charge_no", Integer, nullable=False, server_default="0"),
    Column("note", Text),
    Column("created_at", UTCDateTime, nullable=False),
    # A message is paid for once per sending, whatever happens to the worker.
    UniqueConstraint("outbox_id", "reason", "charge_no"),
)

sms_opt_outs = Table(
    "sms_opt_outs",
    metadata,
    _id(),
    _site(),
    Column("phone", String(32), nullable=False),
    Column("opted_out", Boolean, nullable=False),
    Column("source", String(32), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("site_id", "phone"),
)

inbound_messages = Table(
    "inbound_messages",
    metadata,
    _id(),
    _site(),
    Column("provider", String(16), nullable=False),
    # Twilio's MessageSid: a retried webhook is stored once.
    Column("provider_sid", String(64), nullable=False, unique=True),
    Column("from_phone", String(32), nullable=False),
    Column("to_phone", String(32)),
    Column("customer_id", Id),
    # Card numbers are redacted before this is written.
    Column("body", Text, nullable=False),
    Column("keyword", String(16)),
    Column("received_at", UTCDateTime, nullable=False),
    # When the concierge finished with it (keywords are finished on arrival);
    # NULL is the concierge's queue, claimed with a lease like the outbox.
    Column("answered_at", UTCDateTime),
    Column("concierge_attempts", Integer, nullable=False, server_default="0"),
    Column("concierge_error", Text),
    Column("lease_owner", String(64)),
    Column("lease_until", UTCDateTime),
    _leased("inbound_messages"),
    Index("ix_inbound_messages_unanswered", "answered_at", "received_at"),
    # Who replied, for the recovery figures.
    Index("ix_inbound_messages_site_customer", "site_id", "customer_id"),
)

#: How far each site's Twilio inbox has been read back, and when it is next
#: checked (services/twilio_catch_up.py): what Twilio's webhooks could not
#: deliver is fetched from its API.
twilio_catch_up = Table(
    "twilio_catch_up",
    metadata,
    _id(),
    Column("site_id", Id, ForeignKey("sites.id"), nullable=False, unique=True),
    # Every text Twilio received before this moment has been stored.
    Column("synced_until", UTCDateTime, nullable=False),
    # When the next read is due; a worker takes it by moving this forward.
    Column("next_check_at", UTCDateTime, nullable=False),
    # The last text asked about for its missing delivery report (sent_at,
    # id): the next check goes on after it. NULL: start from the oldest.
    Column("reports_after", UTCDateTime),
    Column("reports_after_id", Id),
    Column("last_error", Text),
    Column("updated_at", UTCDateTime, nullable=False),
)


webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    _id(),
    _site(),
    Column("url", Text, nullable=False),
    # The Standard Webhooks signing secret ("whsec_..."), encrypted at rest.
    Column("secret", Text, nullable=False),
    # Event types this endpoint receives; empty means all.
    Column("events", JSON, nullable=False),
    Column("description", Text),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _id(),
    _site(),
    Column("endpoint_id", Id, ForeignKey("webhook_endpoints.id"), nullable=False, index=True),
    Column("event_id", Id, ForeignKey("events.id"), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    # pending | sending | delivered | failed | canceled
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until", UTCDateTime),
    _leased("webhook_deliveries"),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("delivered_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # One delivery per event and endpoint, however often the fan-out runs.
    UniqueConstraint("event_id", "endpoint_id"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    _id(),
    _site(),
    Column("delivery_id", Id, ForeignKey("webhook_deliveries.id"), nullable=False, index=True),
    Column("attempt_no", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("status_code", Integer),
    Column("response_excerpt", Text),
    Column("error", Text),
    Column("duration_ms", Integer),
    UniqueConstraint("delivery_id", "attempt_no"),
)

stripe_events = Table(
    "stripe_events",
    metadata,
    _id(),
    _site(),
    Column("stripe_event_id", String(255), nullable=False),
    Column("type", String(64), nullable=False),
    # Stripe's own "created" of the event: orders events about one object.
    Column("stripe_created_at", UTCDateTime, nullable=False),
    Column("object_id", String(255)),
    Column("received_at", UTCDateTime, nullable=False),
    # applied | ignored_stale | ignored_type | failed, with why.
    Column("outcome", String(32), nullable=False),
    Column("detail", Text),
    UniqueConstraint("site_id", "stripe_event_id"),
    Index("ix_stripe_events_object", "site_id", "object_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    _id(),
    _site(),
    Column("key", String(255), nullable=False),
    Column("method", String(8), nullable=False),
    Column("path", Text, nullable=False),
    # SHA-256 of the request body: the same key with other parameters is an error.
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer),
    Column("response_body", JSON),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("site_id", "key"),
)

site_preferences = Table(
    "site_preferences",
    metadata,
    _id(),
    Column("site_id", Id, ForeignKey("sites.id"), nullable=False, unique=True),
    # The customer page's rules and the Stripe webhook secret (encrypted).
    Column("portal", JSON, nullable=False),
    Column("stripe_webhook_secret", Text),
    Column("updated_at", UTCDateTime, nullable=False),
)

# -- the SMS concierge ---------------------------------------------------------

concierge_settings = Table(
    "concierge_settings",
    metadata,
    _id(),
    Column("site_id", Id, ForeignKey("sites.id"), nullable=False, unique=True),
    # Switches, the escalation address and the help desk's URL and username.
    Column("settings", JSON, nullable=False),
    # The help desk's API key, encrypted like every provider secret.
    Column("helpdesk_secret", Text),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: The predicate of a conversation that is not closed (``uq_conversations_live_phone``).
LIVE_CONVERSATION = text("status IN ('open', 'escalated')")

conversations = Table(
    "conversations",
    metadata,
    _id(),
    _site(),
    Column("customer_id", Id, ForeignKey("customers.id")),
    Column("phone", String(32), nullable=False),
    # open: the concierge is talking; escalated: a person has it; closed.
    Column("status", String(16), nullable=False),
    # How it ended: completed, declined, escalated, answered or abandoned.
    Column("outcome", String(16)),
    # The dialogue's memory between turns: what was asked, what is proposed.
    Column("state", JSON, nullable=False),
    Column("awaiting", String(32)),
    # When to nudge an unanswered confirmation question (once).
    Column("nudge_at", UTCDateTime),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_message_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    CheckConstraint("status IN ('open', 'escalated', 'closed')", name="status"),
    Index("ix_conversations_phone", "site_id", "phone", "status"),
    # At most one live conversation per number: two workers answering the
    # same sender's texts at once must not each open one.
    Index(
        "uq_conversations_live_phone",
        "site_id",
        "phone",
        unique=True,
        sqlite_where=LIVE_CONVERSATION,
        postgresql_where=LIVE_CONVERSATION,
    ),
    Index("ix_conversations_nudge", "nudge_at"),
    # A customer's conversations on the dashboard.
    Index("ix_conversations_site_customer", "site_id", "customer_id"),
)

conversation_turns = Table(
    "conversation_turns",
    metadata,
    _id(),
    _site(),
    Column("conversation_id", Id, ForeignKey("conversations.id"), nullable=False, index=True),
    Column("direction", String(8), nullable=False),
    # customer, concierge (automatic) or merchant (a person replying by hand).
    Column("author", String(16), nullable=False),
    # Card numbers are redacted before this is written.
    Column("body", Text, nullable=False),
    # What the text was understood to mean, and by what (rules or llm).
    Column("intent", String(32)),
    Column("slots", JSON),
    Column("understood_by", String(8)),
    # The action this turn proposed or carried out, and how it went.
    Column("action", String(32)),
    Column("action_status", String(16)),
    Column("action_result", JSON),
    Column("inbound_message_id", Id, ForeignKey("inbound_messages.id")),
    Column("outbox_id", Id, ForeignKey("outbox.id")),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("direction IN ('inbound', 'outbound')", name="direction"),
    Index("ix_conversation_turns_action", "site_id", "action", "action_status"),
)

escalations = Table(
    "escalations",
    metadata,
    _id(),
    _site(),
    Column("conversation_id", Id, ForeignKey("conversations.id"), nullable=False, index=True),
    Column("customer_id", Id),
    # not_understood, asked_for_person or action_failed.
    Column("reason", String(32), nullable=False),
    # pending, ticketed (help desk), emailed (support address) or failed.
    Column("status", String(16), nullable=False),
    Column("ticket_id", String(64)),
    Column("email_outbox_id", Id, ForeignKey("outbox.id")),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("lease_owner", String(64)),
    Column("lease_until", UTCDateTime),
    _leased("escalations"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_escalations_due", "status", "next_attempt_at"),
)

# -- the merchant dashboard ------------------------------------------------------

console_users = Table(
    "console_users",
    metadata,
    _id(),
    _site(),
    # Kept lower-cased: one person, one address, whatever they type.
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=False),
    # scrypt, with its parameters and salt in the value (security/passwords.py).
    Column("password_hash", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    # Consecutive failed sign-ins; at the limit the account waits until locked_until.
    Column("failed_sign_ins", Integer, nullable=False, default=0),
    Column("locked_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
    UniqueConstraint("site_id", "email"),
    CheckConstraint("role IN ('owner', 'configuration', 'analytics', 'support')", name="role"),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    _id(),
    _site(),
    Column("user_id", Id, ForeignKey("console_users.id"), nullable=False, index=True),
    # Only a SHA-256 of the cookie's random token is kept, like API keys.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
)
