"""What the service tells a citizen by SMS or email, in Vietnamese by default.

A notice is written when the change that causes it commits (the outbox) and
sent later; its text is fixed then, in the language the service is set to.
Texts carrying a one-time code warn against sharing it, as the public
guidance does."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import timedelta


class Language(enum.Enum):
    VIETNAMESE = "vi"
    ENGLISH = "en"


class NoticeKind(enum.Enum):
    ACTIVATION_CODE = "activation_code"
    LOCK_CODE = "lock_code"
    UNLOCK_CODE = "unlock_code"
    VERIFY_CODE = "verify_code"
    ACCOUNT_LOCKED = "account_locked"
    ACCOUNT_UNLOCKED = "account_unlocked"
    # An officer raised the account to level 2 (biometrics enrolled at the counter).
    ACCOUNT_LEVEL_2 = "account_level_2"
    # Not a citizen's notice: a relying party's status event (use_cases/status_events.py).
    STATUS_EVENT = "status_event"
    # To a guardian, about a dependant (domain/dependant.py): the child
    # turned 14, started taking the account over, completed it.
    DEPENDANT_OF_AGE = "dependant_of_age"
    DEPENDANT_TAKE_OVER_STARTED = "dependant_take_over_started"
    DEPENDANT_TAKEN_OVER = "dependant_taken_over"


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    # The email subject; an SMS carries only the body.
    subject: str
    body: str = field(repr=False)


def parse_language(raw: str) -> Language:
    try:
        return Language(raw.strip().lower())
    except ValueError:
        raise ValueError(f"unknown language {raw!r}: use 'vi' or 'en'") from None


def _minutes(valid_for: timedelta) -> int:
    return max(1, int(valid_for.total_seconds() // 60))


_CODE_TEXTS = {
    NoticeKind.ACTIVATION_CODE: {
        Language.VIETNAMESE: (
            "Mã kích hoạt tài khoản định danh điện tử",
            "eid: Mã kích hoạt tài khoản của bạn là {code}, có hiệu lực trong {minutes} phút.",
        ),
        Language.ENGLISH: (
            "Your e-identity activation code",
            "eid: your activation code is {code}. It expires in {minutes} minutes.",
        ),
    },
    NoticeKind.LOCK_CODE: {
        Language.VIETNAMESE: (
            "Mã xác nhận khóa tài khoản định danh điện tử",
            "eid: Mã xác nhận khóa tài khoản của bạn là {code}, có hiệu lực trong {minutes} phút.",
        ),
        Language.ENGLISH: (
            "Your code to lock your e-identity account",
            "eid: your code to lock your account is {code}. It expires in {minutes} minutes.",
        ),
    },
    NoticeKind.UNLOCK_CODE: {
        Language.VIETNAMESE: (
            "Mã xác nhận mở khóa tài khoản định danh điện tử",
            "eid: Mã xác nhận mở khóa tài khoản của bạn là {code},"
            " có hiệu lực trong {minutes} phút.",
        ),
        Language.ENGLISH: (
            "Your code to unlock your e-identity account",
            "eid: your code to unlock your account is {code}. It expires in {minutes} minutes.",
        ),
    },
}

# Names the party, so a citizen asked for a code by someone else can tell.
_VERIFY_TEXTS = {
    Language.VIETNAMESE: (
        "Mã xác thực danh tính điện tử",
        "eid: {party} đề nghị xác thực danh tính của bạn. Mã xác thực là {code},"
        " có hiệu lực trong {minutes} phút. Chỉ đọc mã cho {party}.",
    ),
    Language.ENGLISH: (
        "Your e-identity verification code",
        "eid: {party} asks to verify your identity. Your code is {code}; it expires in"
        " {minutes} minutes. Give it to {party} only.",
    ),
}

_NEVER_SHARE = {
    Language.VIETNAMESE: (
        " Tuyệt đối không cung cấp mã cho bất kỳ ai, kể cả người tự xưng là công an."
    ),
    Language.ENGLISH: " Never share it with anyone, including callers claiming to be the police.",
}

_STATE_TEXTS = {
    NoticeKind.ACCOUNT_LOCKED: {
        Language.VIETNAMESE: (
            "Tài khoản định danh điện tử đã bị khóa",
            "eid: Tài khoản định danh điện tử của bạn đã được khóa; mọi phiên đăng nhập và mã QR"
            " đã chia sẻ đều hết hiệu lực. Nếu không phải bạn yêu cầu, hãy liên hệ cơ quan công an"
            " nơi gần nhất.",
        ),
        Language.ENGLISH: (
            "Your e-identity account is locked",
            "eid: your e-identity account has been locked; every session and every shared QR"
            " code has ended. If you did not ask for this, contact your nearest police office.",
        ),
    },
    NoticeKind.ACCOUNT_UNLOCKED: {
        Language.VIETNAMESE: (
            "Tài khoản định danh điện tử đã được mở khóa",
            "eid: Tài khoản định danh điện tử của bạn đã được mở khóa. Nếu không phải bạn yêu cầu,"
            " hãy liên hệ cơ quan công an nơi gần nhất.",
        ),
        Language.ENGLISH: (
            "Your e-identity account is unlocked",
            "eid: your e-identity account has been unlocked. If you did not ask for this,"
            " contact your nearest police office.",
        ),
    },
    NoticeKind.ACCOUNT_LEVEL_2: {
        Language.VIETNAMESE: (
            "Tài khoản định danh điện tử đã được nâng lên mức độ 2",
            "eid: Tài khoản định danh điện tử của bạn đã được nâng lên mức độ 2 tại cơ quan"
            " công an, với ảnh chân dung và vân tay của bạn. Nếu không phải bạn, hãy liên hệ"
            " cơ quan công an nơi gần nhất.",
        ),
        Language.ENGLISH: (
            "Your e-identity account is now level 2",
            "eid: your e-identity account was raised to level 2 at a police registration office,"
            " with your portrait and fingerprints. If this was not you, contact your nearest"
            " police office.",
        ),
    },
}


# To the guardian: no name or ID number (the app's dependants list says
# which child), as every notice leaves personal data out.
_DEPENDANT_TEXTS = {
    NoticeKind.DEPENDANT_OF_AGE: {
        Language.VIETNAMESE: (
            "Người phụ thuộc của bạn đã đủ 14 tuổi",
            "eid: Một người phụ thuộc trong tài khoản định danh điện tử của bạn đã đủ 14 tuổi"
            " và có thể tự quản lý tài khoản: hãy giúp con đăng ký bằng số điện thoại của"
            " mình và kích hoạt tài khoản. Xem danh sách người phụ thuộc trong ứng dụng.",
        ),
        Language.ENGLISH: (
            "Your dependant has turned 14",
            "eid: a dependant on your e-identity account has turned 14 and can now manage"
            " their own account: help them register with their own phone number and"
            " activate it. Your dependants are listed in the app.",
        ),
    },
    NoticeKind.DEPENDANT_TAKE_OVER_STARTED: {
        Language.VIETNAMESE: (
            "Người phụ thuộc của bạn đang tự đăng ký tài khoản",
            "eid: Một người phụ thuộc trong tài khoản của bạn đã đăng ký tài khoản bằng số"
            " điện thoại của mình; bạn không thể chia sẻ thông tin của con nữa. Nếu không"
            " phải con bạn, hãy liên hệ cơ quan công an nơi gần nhất.",
        ),
        Language.ENGLISH: (
            "Your dependant is taking over their account",
            "eid: a dependant on your account has registered with their own phone number;"
            " you can no longer share their data. If this was not your child, contact"
            " your nearest police office.",
        ),
    },
    NoticeKind.DEPENDANT_TAKEN_OVER: {
        Language.VIETNAMESE: (
            "Người phụ thuộc của bạn đã tự quản lý tài khoản",
            "eid: Một người phụ thuộc trong tài khoản của bạn đã kích hoạt tài khoản riêng"
            " và từ nay tự quản lý tài khoản.",
        ),
        Language.ENGLISH: (
            "Your dependant now manages their own account",
            "eid: a dependant on your account has activated their own account and"
            " manages it from now on.",
        ),
    },
}


def dependant_notice(kind: NoticeKind, language: Language) -> Notice:
    """To a guardian: a dependant turned 14, or is taking or took the account over."""
    subject, body = _DEPENDANT_TEXTS[kind][language]
    return Notice(kind, subject, body)


def code_notice(kind: NoticeKind, code: str, valid_for: timedelta, language: Language) -> Notice:
    """A one-time code (activation, lock, unlock) and how long it lasts."""
    subject, template = _CODE_TEXTS[kind][language]
    body = template.format(code=code, minutes=_minutes(valid_for)) + _NEVER_SHARE[language]
    return Notice(kind, subject, body)


def verify_code_notice(
    code: str, party_name: str, valid_for: timedelta, language: Language
) -> Notice:
    """A one-time code a relying party asked for to verify the citizen, naming the party."""
    subject, template = _VERIFY_TEXTS[language]
    body = template.format(code=code, party=party_name[:40], minutes=_minutes(valid_for))
    return Notice(NoticeKind.VERIFY_CODE, subject, body)


def state_notice(kind: NoticeKind, language: Language) -> Notice:
    """The account was locked, unlocked or raised to level 2."""
    subject, body = _STATE_TEXTS[kind][language]
    return Notice(kind, subject, body)
