"""Payment phrases: a new card, a retry now, or a promise to pay later.

- New details are ``update_payment``: "my card expired", "new card",
  "need to switch cards".
- Asking for the charge to be tried again now is ``retry_payment``: "charge
  me now", "money's there now, retry it". Having updated the card is read
  as a request to retry ("I updated my card, try again", "just updated my
  card"): there is nothing left to update.
- A time the customer can pay is ``promise_to_pay``, with the date when it
  can be resolved: "I get paid friday", "I can pay on the 10th", "try
  again on the 1st". "I'll pay soon" is a promise without a date.

"charge date", "payment date" and "billing date" are the order's date, so
they never make a text about payments ("move my charge date to the 9th"
is ``change_date``). A bare "charge me on the 10th" is a promise while a
payment is outstanding and a new order date otherwise.
"""

from __future__ import annotations

import re

from dunwell.concierge.intents import Intent
from dunwell.concierge.reading import Guess, Reading, compile_any

_ORDER_DATE = re.compile(
    r"\b(?:payment|billing|charge|renewal|bill|order|ship|delivery)\s+(?:date|day)s?\b"
)
_CARD = (
    r"(?:card|cards|visa|mastercard|master card|amex|debit|credit|discover|payment|payments"
    r"|billing|bank|paypal|account number|cc)"
)
_UPDATE = compile_any(
    rf"\b{_CARD}\b[^.?!]{{0,30}}\b(?:expired|expires|expiring|out of date|was stolen|stolen|lost"
    r"|compromised|frozen|blocked|closed|replaced|reissued|cancell?ed|canceled|has a new number"
    r"|got a new number)\b",
    r"\b(?:expired|lost|stolen|new|different|another|other|updated|replacement|backup|second)\s+"
    rf"(?:[\w']+\s+)?{_CARD}\b",
    r"\b(?:updat(?:e|ing)|chang(?:e|ing)|switch(?:ing)?|replac(?:e|ing)|edit(?:ing)?|fix(?:ing)?"
    r"|swap(?:ping)?|add(?:ing)?|use|using|put(?:ting)? in|enter(?:ing)?|give you)\s+"
    rf"(?:[\w']+\s+){{0,2}}?{_CARD}\b",
    r"\bnew (?:card|payment)\b|\bbilling (?:address|info|information|details)\b",
    rf"\b{_CARD}\s+(?:details|info|information|number|method)\b",
)
# "my card was declined, how do i update it?": "it" is the card once one is named.
_UPDATE_IT = re.compile(
    r"\b(?:update|change|replace|fix|switch)\s+(?:it|that|them|this)\b"
    r"|\b(?:put in|enter|add|give you|use)\s+(?:a\s+)?(?:new|different|another)\s+one\b"
)
_CARD_CONTEXT = re.compile(rf"\b{_CARD}\b")
# "can I pay with a different card": how to pay, not when; with a time named
# ("I can pay with my card on friday", "...next week") it is still a promise.
_PAY_BY_MEANS = re.compile(
    rf"\bpay(?:ing)?\s+(?:with|by|using|via|through)\s+(?:[\w']+\s+){{0,2}}?{_CARD}\b"
)
_RETRY = compile_any(
    r"\b(?:retry|re-?try|re-?run|rerun|reprocess|re-?process|re-?charge|rebill|re-?bill|re-?attempt)\b",
    r"\btry\s+(?:[\w']+\s+){0,3}?again\b",
    r"\b(?:run|put|process|charge|bill)\s+(?:[\w']+\s+){0,3}?(?:again|through)\b",
    r"\bcharge\s+(?:me|it|my card|the card|my account|that|the payment)\s+(?:now|today|right now"
    r"|again|right away|immediately)\b",
    r"\b(?:go ahead and|you can|you may|feel free to|please|ok to|okay to)\s+"
    r"(?:re)?(?:charge|bill)\b",
    r"\b(?:money|funds|cash|balance|paycheck|deposit|payment)(?:'s| is| are| has| have| should be)?"
    r"\s+(?:[\w']+\s+){0,2}?(?:there|in|available|cleared|through|deposited|arrived|landed|back)\b"
    r"(?!\s+(?:on|by|until|till|next|friday|monday|tuesday|wednesday|thursday|saturday|sunday))",
    r"\bshould (?:go through|work|be fine|be ok|be good|clear)\s+(?:[\w']+\s+)?(?:now|this time)\b",
    r"\b(?:i've|i have|i|just|we've|we)\s+(?:just\s+)?(?:updated|changed|fixed|replaced|added"
    rf"|put in|entered)\s+(?:[\w']+\s+){{0,3}}?{_CARD}\b",
    r"\b(?:card|payment|billing)\s+(?:is|has been|was)\s+(?:[\w']+\s+)?(?:updated|fixed)\b",
)
_PROMISE = compile_any(
    r"\b(?:i'll|i will|i can|i could|can i|we can|we'll|will|i'm going to|i am going to|going to"
    r"|let me|i should be able to|i'll be able to|able to|i can't|i cannot|can't|cannot|unable to"
    r"|won't be able to|i plan to|planning to|promise to)\s+(?:[\w']+\s+){0,2}?(?:pay|make"
    r" (?:the |a |my )?payment|cover (?:it|the)|afford|settle|catch up|get (?:you |it )?(?:paid"
    r"|the money))\b",
    r"\b(?:get paid|paid on|payday|pay day|paycheck|pay check|payslip|salary|wages|direct deposit"
    r"|benefits|social security|disability check|unemployment|stimulus|tax refund)\b",
    r"\b(?:have|get|receive)\s+(?:the\s+|my\s+|some\s+)?(?:money|funds|cash|check|cheque)\b",
    r"\b(?:money|funds|cash)\s+(?:will be|should be|comes|come|arrives?|lands?|hits?)\b",
    r"\b(?:wait|hold off|give me)\s+(?:[\w']+\s+){0,3}?(?:until|till|til)\b",
    r"\b(?:pay|payment)\s+(?:[\w']+\s+)?(?:later|soon|next week|next month|then|after)\b",
    r"\b(?:give me|need|wait)\s+(?:[\w']+\s+){0,3}?to pay\b|\bmore time to pay\b",
)
_LATER = re.compile(r"\b(?:later|soon|next week|next month|next payday|after payday)\b")
_PAYING = re.compile(
    r"\b(?:pay|paid|paying|money|funds|cash|paycheck|payday|afford|salary|check|payment)\b"
)
_PAY = re.compile(r"\bpay(?:ing)?\b")
_CHARGE = re.compile(r"\b(?:charge|bill)\b")


def payment(r: Reading) -> Guess | None:
    """A text about paying: promise, retry or new details, in that order of precedence."""
    text = _ORDER_DATE.sub("order date", r.text)
    if _RETRY.search(text):
        # "try again on the 1st", "retry next week": a retry later is a promise.
        if r.date is not None or _LATER.search(text):
            return Guess(Intent.PROMISE_TO_PAY, r.date_slot())
        return Guess(Intent.RETRY_PAYMENT)
    if r.date is None and not _LATER.search(text) and _PAY_BY_MEANS.search(text):
        return Guess(Intent.UPDATE_PAYMENT)
    about_paying = _PAYING.search(text) is not None or r.overdue
    if about_paying and _PROMISE.search(text):
        return Guess(Intent.PROMISE_TO_PAY, r.date_slot())
    if r.date is not None and _PAY.search(text):
        return Guess(Intent.PROMISE_TO_PAY, r.date_slot())  # "pay you friday!"
    if _UPDATE.search(text) or (_CARD_CONTEXT.search(text) and _UPDATE_IT.search(text)):
        return Guess(Intent.UPDATE_PAYMENT)
    if r.date is not None and r.overdue and _CHARGE.search(text):
        return Guess(Intent.PROMISE_TO_PAY, r.date_slot())
    return None
