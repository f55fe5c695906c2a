"""eid.v1.IdentityService, verification by relying parties: Verify in every
mode, RequestOtp, and the citizen's access history. Translation only, as in
identity_servicer.py."""

from __future__ import annotations

from eid.v1 import identity_service_pb2 as pb
from eid_service.api import convert, metadata
from eid_service.api.approval_convert import approval_wait
from eid_service.api.servicer_base import Context, ServicerBase
from eid_service.domain.biometric_match import ProbeResult
from eid_service.domain.demographic import (
    DEFAULT_NAME_THRESHOLD,
    GENDER_FIELD,
    AttributeMatch,
    DemographicClaim,
    DemographicResult,
    NameMatchStrategy,
    parse_claimed_birth_date,
)
from eid_service.domain.errors import InvalidInput
from eid_service.domain.party import Grant, RelyingParty, Scope, VerifyMode
from eid_service.domain.share import Attribute
from eid_service.use_cases.access_history import AccessPage, list_access_history
from eid_service.use_cases.verified import Verification, require_grants
from eid_service.use_cases.verify import verify_password
from eid_service.use_cases.verify_approval import verify_approval
from eid_service.use_cases.verify_biometric import BiometricCommand, verify_biometric
from eid_service.use_cases.verify_demographic import DemographicCommand, verify_demographic
from eid_service.use_cases.verify_otp import OtpSent, request_otp, verify_one_time_code
from eid_service.use_cases.verify_share import redeem_share

METHOD_TO_PB = {
    VerifyMode.PASSWORD: pb.VERIFICATION_METHOD_PASSWORD,
    VerifyMode.QR_SHARE: pb.VERIFICATION_METHOD_QR_SHARE,
    VerifyMode.ONE_TIME_CODE: pb.VERIFICATION_METHOD_ONE_TIME_CODE,
    VerifyMode.DEMOGRAPHIC: pb.VERIFICATION_METHOD_DEMOGRAPHIC,
    VerifyMode.APPROVAL: pb.VERIFICATION_METHOD_APPROVAL,
    VerifyMode.BIOMETRIC: pb.VERIFICATION_METHOD_BIOMETRIC,
}
SCOPE_FROM_PB = {
    pb.SCOPE_BASIC: Scope.BASIC,
    pb.SCOPE_ID_NUMBER: Scope.ID_NUMBER,
    pb.SCOPE_CONTACT: Scope.CONTACT,
    pb.SCOPE_DOCUMENTS_DRIVING_LICENCE: Scope.DOCUMENTS_DRIVING_LICENCE,
    pb.SCOPE_DOCUMENTS_VEHICLE_REGISTRATION: Scope.DOCUMENTS_VEHICLE_REGISTRATION,
    pb.SCOPE_DOCUMENTS_HEALTH_INSURANCE: Scope.DOCUMENTS_HEALTH_INSURANCE,
    pb.SCOPE_DOCUMENTS_SOCIAL_INSURANCE: Scope.DOCUMENTS_SOCIAL_INSURANCE,
    pb.SCOPE_DOCUMENTS_TAX_CODE: Scope.DOCUMENTS_TAX_CODE,
}
# Scopes that release no attribute: held or not (require_grants).
GRANT_FROM_PB = {pb.SCOPE_BIOMETRIC_MATCH: Grant.BIOMETRIC_MATCH}
MATCH_TO_PB = {
    AttributeMatch.NOT_CLAIMED: pb.ATTRIBUTE_MATCH_UNSPECIFIED,
    AttributeMatch.MATCH: pb.ATTRIBUTE_MATCH_MATCH,
    AttributeMatch.NO_MATCH: pb.ATTRIBUTE_MATCH_NO_MATCH,
}
NAME_STRATEGY_FROM_PB = {
    pb.NAME_MATCH_STRATEGY_UNSPECIFIED: NameMatchStrategy.EXACT,
    pb.NAME_MATCH_STRATEGY_EXACT: NameMatchStrategy.EXACT,
    pb.NAME_MATCH_STRATEGY_PARTIAL: NameMatchStrategy.PARTIAL,
}
ATTRIBUTE_TO_PB = {v: k for k, v in convert.ATTRIBUTE_FROM_PB.items()}


def requested_attributes(
    request: pb.VerifyRequest | pb.StartApprovalRequest, party: RelyingParty
) -> frozenset[Attribute] | None:
    """The attributes of the scopes asked for; None when none were named.
    BIOMETRIC_MATCH releases none, and is refused unless the party holds it."""
    if not request.requested_scopes:
        return None
    wanted: set[Attribute] = set()
    grants: set[Grant] = set()
    for scope in request.requested_scopes:
        found = SCOPE_FROM_PB.get(scope)
        grant = GRANT_FROM_PB.get(scope)
        if grant is not None:
            grants.add(grant)
        elif found is None:
            raise InvalidInput.of(
                "requested_scopes",
                "SCOPE_UNKNOWN",
                "requested_scopes must be BASIC, ID_NUMBER, CONTACT, BIOMETRIC_MATCH or a"
                " DOCUMENTS_* scope",
            )
        else:
            wanted |= found.attributes
    require_grants(party, frozenset(grants))
    return frozenset(wanted)


def biometric_command(credential: pb.BiometricCredential) -> BiometricCommand:
    has_fingerprint = credential.HasField("fingerprint")
    return BiometricCommand(
        personal_id=credential.personal_id,
        portrait=credential.portrait,
        finger=int(credential.fingerprint.finger) if has_fingerprint else None,
        fingerprint=credential.fingerprint.template,
    )


def biometric_pb(result: ProbeResult) -> pb.BiometricResult:
    return pb.BiometricResult(
        match=result.matched,
        portrait_score=result.portrait_score,
        fingerprint_score=result.fingerprint_score,
    )


def demographic_command(credential: pb.DemographicCredential) -> DemographicCommand:
    strategy = NAME_STRATEGY_FROM_PB.get(credential.name_match)
    if strategy is None:
        raise InvalidInput.of(
            "demographic.name_match", "NAME_MATCH_UNKNOWN", "name_match must be EXACT or PARTIAL"
        )
    gender = None
    if credential.gender != pb.GENDER_UNSPECIFIED:
        gender = convert.GENDER_FROM_PB.get(credential.gender)
        if gender is None:
            raise InvalidInput.of(GENDER_FIELD, "GENDER_UNKNOWN", "gender must be MALE or FEMALE")
    birth_date = None
    if credential.birth_date:
        birth_date = parse_claimed_birth_date(credential.birth_date)
    claim = DemographicClaim(
        full_name=credential.full_name or None,
        birth_date=birth_date,
        gender=gender,
        name_strategy=strategy,
        name_threshold=credential.name_threshold or DEFAULT_NAME_THRESHOLD,
    )
    return DemographicCommand(credential.personal_id, claim)


def demographic_pb(result: DemographicResult) -> pb.DemographicResult:
    return pb.DemographicResult(
        full_name=MATCH_TO_PB[result.name],
        full_name_score=result.name_score,
        birth_date=MATCH_TO_PB[result.birth_date],
        gender=MATCH_TO_PB[result.gender],
    )


def verification_pb(v: Verification) -> pb.VerifyResponse:
    out = pb.VerifyResponse(
        verified=v.verified,
        method=METHOD_TO_PB[v.method],
        verification_id=v.verification_id,
        verify_time=convert.timestamp(v.at),
        subject=v.subject,
        receipt=v.receipt,
    )
    if v.level is not None:
        out.level = convert.LEVEL_TO_PB[v.level]
    if v.demographic is not None:
        out.demographic.CopyFrom(demographic_pb(v.demographic))
    if v.biometric is not None:
        out.biometric.CopyFrom(biometric_pb(v.biometric))
    convert.fill_attributes(out.attributes, v.released)
    convert.fill_documents(out.attributes, v.documents)
    return out


def access_page_pb(page: AccessPage) -> pb.ListAccessHistoryResponse:
    return pb.ListAccessHistoryResponse(
        records=[
            pb.AccessRecord(
                verification_id=record.verification_id,
                party_id=record.party_id,
                party_name=record.party_name,
                method=METHOD_TO_PB.get(record.method, pb.VERIFICATION_METHOD_UNSPECIFIED),
                verified=record.verified,
                attributes=sorted(ATTRIBUTE_TO_PB[a] for a in record.attributes),
                verify_time=convert.timestamp(record.at),
                receipt=record.receipt,
                guardian_account_id=record.guardian_account_id,
            )
            for record in page.records
        ],
        next_page_token=page.next_page_token,
    )


class VerifyRpcs(ServicerBase):
    async def Verify(self, request: pb.VerifyRequest, context: Context) -> pb.VerifyResponse:
        party = await self._party(context)
        reply = self._reply(
            "verify", request, request.request_id, pb.VerifyResponse, verification_pb, context
        )
        requested = requested_attributes(request, party)
        uow, ctx = self._uow, self._ctx
        which = request.WhichOneof("credential")
        if which == "password":
            pw = request.password
            return await verify_password(
                uow, ctx, party, pw.personal_id, pw.password, reply, requested
            )
        if which == "qr_share":
            return await redeem_share(uow, ctx, party, request.qr_share.token, reply, requested)
        if which == "one_time_code":
            otp = request.one_time_code
            return await verify_one_time_code(
                uow, ctx, party, otp.personal_id, otp.code, requested, reply
            )
        if which == "demographic":
            cmd = demographic_command(request.demographic)
            return await verify_demographic(uow, ctx, party, cmd, reply)
        if which == "biometric":
            cmd_b = biometric_command(request.biometric)
            return await verify_biometric(uow, ctx, party, cmd_b, reply, requested)
        if which == "approval":
            # How long to wait is how the party asks, not what it asks: a poll
            # may reuse its request_id with another wait.
            asked = pb.VerifyRequest()
            asked.CopyFrom(request)
            asked.approval.ClearField("max_wait")
            reply = self._reply(
                "verify", asked, request.request_id, pb.VerifyResponse, verification_pb, context
            )
            wait = approval_wait(request.approval, context)
            return await verify_approval(
                uow, ctx, party, request.approval.approval_id, requested, reply, wait_seconds=wait
            )
        raise InvalidInput.of(
            "credential",
            "CREDENTIAL_MISSING",
            "set one of password, qr_share, one_time_code, demographic, approval or biometric",
        )

    async def RequestOtp(
        self, request: pb.RequestOtpRequest, context: Context
    ) -> pb.RequestOtpResponse:
        party = await self._party(context)

        def present(sent: OtpSent) -> pb.RequestOtpResponse:
            return pb.RequestOtpResponse(expire_time=convert.timestamp(sent.expires_at))

        reply = self._reply(
            "request_otp", request, request.request_id, pb.RequestOtpResponse, present, context
        )
        response = await request_otp(self._uow, self._ctx, party, request.personal_id, reply)
        self.on_outbox_write()
        return response

    async def ListAccessHistory(
        self, request: pb.ListAccessHistoryRequest, context: Context
    ) -> pb.ListAccessHistoryResponse:
        page = await list_access_history(
            self._uow,
            self._ctx,
            metadata.bearer_token(context),
            request.page_size,
            request.page_token,
            request.dependant_account_id,
        )
        return access_page_pb(page)
