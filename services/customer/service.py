"""The customer service's rules: who a customer is and how a profile changes.

- A customer registers with a name and a phone; phones are kept in E.164 form.
- Contact details change as a whole (phones, e-mail, preferred channel).
- Loyalty points are awarded or redeemed; the balance never goes below zero.
- When a call comes in, the caller is identified by their phone number; a
  caller nobody knows gets a new profile (named after the number until an
  operator fills it in).
- Two profiles of one person are merged: the survivor takes the duplicate's
  phones, points and missing contact details; then the duplicate is retired
  (it follows from the merge) and is no longer found by phone.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.customer.v1 import customer_pb2 as pb
from contracts.interaction.v1 import interaction_pb2 as interaction
from services.customer.phones import InvalidPhone, to_e164
from troupe import Command, CommandContext, Emit, EventContext, Rejected, Service

customer = Service("customer", entity=pb.Customer, id_field="customer_id")


def _phones(raw: list[str]) -> list[str]:
    try:
        return list(dict.fromkeys(to_e164(p) for p in raw))
    except InvalidPhone as error:
        raise Rejected(str(error)) from error


@customer.command(pb.RegisterCustomerRequest, emits="CustomerRegistered")
def register(
    current: pb.Customer | None, request: pb.RegisterCustomerRequest, _context: CommandContext
) -> pb.Customer:
    if current is not None:
        raise Rejected(f"customer {request.customer_id} is already registered")
    if not request.name.strip():
        raise Rejected("a customer needs a name")
    return pb.Customer(
        customer_id=request.customer_id,
        name=request.name.strip(),
        phones=_phones([request.phone] if request.phone else []),
        email=request.email,
        preferred_channel=request.preferred_channel,
    )


@customer.command(pb.ChangeContactRequest, emits="CustomerContactChanged")
def change_contact(
    current: pb.Customer | None, request: pb.ChangeContactRequest, _context: CommandContext
) -> pb.Customer:
    if current is None:
        raise Rejected(f"customer {request.customer_id} does not exist")
    current.ClearField("phones")
    current.phones.extend(_phones(list(request.phones)))
    current.email = request.email
    current.preferred_channel = request.preferred_channel
    return current


@customer.command(pb.AwardLoyaltyPointsRequest, emits="LoyaltyPointsChanged")
def award_loyalty_points(
    current: pb.Customer | None, request: pb.AwardLoyaltyPointsRequest, _context: CommandContext
) -> pb.Customer:
    if current is None:
        raise Rejected(f"customer {request.customer_id} does not exist")
    if current.loyalty_points + request.points < 0:
        raise Rejected(
            f"cannot redeem {-request.points} points: the balance is {current.loyalty_points}"
        )
    current.loyalty_points += request.points
    return current


def caller_id(phone: str) -> str:
    """The id of the profile created for an unknown caller: the same for every call
    from that number, so two simultaneous first calls create one profile."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"troupe:customer:phone:{phone}"))


@customer.command(pb.IdentifyCallerRequest, emits=("CallerIdentified", "CallerRegistered"))
def identify_caller(
    current: pb.Customer | None, request: pb.IdentifyCallerRequest, _context: CommandContext
) -> Emit:
    phone = _phones([request.phone])[0]
    known = current is not None
    if current is None:
        current = pb.Customer(
            customer_id=request.customer_id, name=f"Caller {phone}", phones=[phone]
        )
    current.last_interaction_id = request.interaction_id
    current.last_contact_at.FromDatetime(datetime.now(UTC))
    return Emit("CallerIdentified" if known else "CallerRegistered", current)


@customer.command(pb.MergeCustomersRequest, emits="CustomersMerged")
def merge(
    current: pb.Customer | None, request: pb.MergeCustomersRequest, context: CommandContext
) -> pb.Customer:
    if current is None:
        raise Rejected(f"customer {request.customer_id} does not exist")
    if request.duplicate_id == request.customer_id:
        raise Rejected("a customer cannot be merged with themselves")
    if current.merged_into:
        raise Rejected(f"customer {current.customer_id} was merged into {current.merged_into}")
    found = context.views.get(customer.events_topic, request.duplicate_id)
    if found is None:
        raise Rejected(f"customer {request.duplicate_id} does not exist")
    duplicate: pb.Customer = found.state
    if duplicate.merged_into:
        raise Rejected(
            f"customer {duplicate.customer_id} was already merged into {duplicate.merged_into}"
        )
    current.phones.extend(p for p in duplicate.phones if p not in current.phones)
    current.email = current.email or duplicate.email
    current.loyalty_card = current.loyalty_card or duplicate.loyalty_card
    current.preferred_channel = current.preferred_channel or duplicate.preferred_channel
    current.loyalty_points += duplicate.loyalty_points
    current.merged_from.append(duplicate.customer_id)
    return current


@customer.command(pb.MarkMergedRequest, emits="CustomerMergedInto")
def mark_merged(
    current: pb.Customer | None, request: pb.MarkMergedRequest, _context: CommandContext
) -> pb.Customer:
    if current is None:
        raise Rejected(f"customer {request.customer_id} does not exist")
    if current.merged_into:
        raise Rejected(
            f"customer {current.customer_id} was already merged into {current.merged_into}"
        )
    current.merged_into = request.merged_into
    # Its points now belong to the survivor.
    current.loyalty_points = 0
    return current


@customer.on(
    "interaction.events",
    "InteractionReceived",
    state=interaction.Interaction,
    sends=(pb.IdentifyCallerRequest,),
)
def on_interaction_received(call: interaction.Interaction, context: EventContext) -> Command | None:
    """Who is calling: the profile with this phone, or a new one."""
    try:
        phone = to_e164(call.caller)
    except InvalidPhone:
        return None  # a hidden or malformed number: the operator identifies the caller
    known = context.views.find(customer.events_topic, "phone", phone)
    customer_id = known[0].state.customer_id if known else caller_id(phone)
    return Command(
        customer_id,
        pb.IdentifyCallerRequest(
            customer_id=customer_id, phone=phone, interaction_id=call.interaction_id
        ),
    )


@customer.on(
    customer.events_topic, "CustomersMerged", state=pb.Customer, sends=(pb.MarkMergedRequest,)
)
def on_merged(survivor: pb.Customer, _context: EventContext) -> Command:
    """The duplicate a survivor has just taken over is retired."""
    duplicate_id = survivor.merged_from[-1]
    return Command(
        duplicate_id,
        pb.MarkMergedRequest(customer_id=duplicate_id, merged_into=survivor.customer_id),
    )


@customer.lookup("phone")
def phones(profile: pb.Customer) -> list[str]:
    return [] if profile.merged_into else list(profile.phones)
