"""The customer service's rules: who a customer is and how a profile changes.

- A customer registers with a name and a phone; phones are kept in E.164 form.
- Contact details change as a whole (phones, e-mail, preferred channel).
- Loyalty points are awarded or redeemed; the balance never goes below zero.
"""

from __future__ import annotations

from contracts.customer.v1 import customer_pb2 as pb
from services.customer.phones import InvalidPhone, to_e164
from troupe import CommandContext, Rejected, Service

customer = Service("customer", entity=pb.Customer, id_field="customer_id")


def _phones(raw: list[str]) -> list[str]:
    try:
        return list(dict.fromkeys(to_e164(p) for p in raw))
    except InvalidPhone as error:
        raise Rejected(str(error)) from error


@customer.command(pb.RegisterCustomerRequest, emits="CustomerRegistered")
def register(
    current: pb.Customer | None, request: pb.RegisterCustomerRequest, context: CommandContext
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
    current: pb.Customer | None, request: pb.ChangeContactRequest, context: CommandContext
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
    current: pb.Customer | None, request: pb.AwardLoyaltyPointsRequest, context: CommandContext
) -> pb.Customer:
    if current is None:
        raise Rejected(f"customer {request.customer_id} does not exist")
    if current.loyalty_points + request.points < 0:
        raise Rejected(
            f"cannot redeem {-request.points} points: the balance is {current.loyalty_points}"
        )
    current.loyalty_points += request.points
    return current


@customer.lookup("phone")
def phones(profile: pb.Customer) -> list[str]:
    return list(profile.phones)
