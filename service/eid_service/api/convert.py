"""Translation between eid.v1 messages and domain values."""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from eid.v1 import identity_service_pb2 as pb
from eid_service.domain.account import Account, AccountLevel, AccountState
from eid_service.domain.citizen import Gender
from eid_service.domain.share import Attribute
from eid_service.use_cases.verify import Method, Verification

GENDER_FROM_PB = {pb.GENDER_MALE: Gender.MALE, pb.GENDER_FEMALE: Gender.FEMALE}
GENDER_TO_PB = {v: k for k, v in GENDER_FROM_PB.items()}
LEVEL_TO_PB = {AccountLevel.LEVEL_1: pb.ACCOUNT_LEVEL_1, AccountLevel.LEVEL_2: pb.ACCOUNT_LEVEL_2}
STATE_TO_PB = {
    AccountState.PENDING: pb.ACCOUNT_STATE_PENDING,
    AccountState.ACTIVE: pb.ACCOUNT_STATE_ACTIVE,
    AccountState.LOCKED: pb.ACCOUNT_STATE_LOCKED,
}
ATTRIBUTE_FROM_PB = {
    pb.ATTRIBUTE_PERSONAL_ID: Attribute.PERSONAL_ID,
    pb.ATTRIBUTE_FULL_NAME: Attribute.FULL_NAME,
    pb.ATTRIBUTE_BIRTH_DATE: Attribute.BIRTH_DATE,
    pb.ATTRIBUTE_GENDER: Attribute.GENDER,
}
METHOD_TO_PB = {
    Method.PASSWORD: pb.VERIFICATION_METHOD_PASSWORD,
    Method.QR_SHARE: pb.VERIFICATION_METHOD_QR_SHARE,
}


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def duration_or_none(message: pb.ShareViaQRRequest) -> timedelta | None:
    if not message.HasField("ttl"):
        return None
    ttl: Duration = message.ttl
    return ttl.ToTimedelta()


def account_pb(account: Account) -> pb.Account:
    out = pb.Account(
        account_id=account.id,
        level=LEVEL_TO_PB[account.level],
        state=STATE_TO_PB[account.state],
        create_time=timestamp(account.created_at),
    )
    if account.activated_at is not None:
        out.activate_time.CopyFrom(timestamp(account.activated_at))
    return out


def verification_pb(v: Verification) -> pb.VerifyResponse:
    out = pb.VerifyResponse(
        verified=v.verified,
        method=METHOD_TO_PB[v.method],
        verification_id=v.verification_id,
        verify_time=timestamp(v.at),
    )
    if v.level is not None:
        out.level = LEVEL_TO_PB[v.level]
    attrs = out.attributes
    for attribute, value in v.released.items():
        if attribute is Attribute.PERSONAL_ID:
            attrs.personal_id = value
        elif attribute is Attribute.FULL_NAME:
            attrs.full_name = value
        elif attribute is Attribute.BIRTH_DATE:
            attrs.birth_date = value
        elif attribute is Attribute.GENDER:
            attrs.gender = GENDER_TO_PB[Gender(value)]
    return out
