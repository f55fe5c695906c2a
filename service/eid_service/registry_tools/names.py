"""What synthetic people are made of: Vietnamese names (with their diacritics,
in NFC) and how common each family name is, how many people are born in each
province, and foreign residents' names, nationalities and passports.

Weights are rough shares of the population, enough to make a generated
registry look like the real one (a third of it named Nguyễn, Hồ Chí Minh City
and Hà Nội the largest provinces), not statistics.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from eid_service.domain.citizen import Gender


def _nfc(names: tuple[str, ...]) -> tuple[str, ...]:
    # The source is NFC already; this makes sure an edit cannot slip NFD in.
    return tuple(unicodedata.normalize("NFC", n) for n in names)


# Family names and their rough share in percent.
FAMILY_NAMES: tuple[tuple[str, float], ...] = (
    ("Nguyễn", 31.5),
    ("Trần", 10.9),
    ("Lê", 9.5),
    ("Phạm", 7.0),
    ("Hoàng", 4.1),
    ("Huỳnh", 2.0),
    ("Phan", 4.5),
    ("Vũ", 2.9),
    ("Võ", 2.5),
    ("Đặng", 2.1),
    ("Bùi", 2.0),
    ("Đỗ", 1.4),
    ("Hồ", 1.3),
    ("Ngô", 1.3),
    ("Dương", 1.0),
    ("Lý", 0.5),
    ("Đinh", 0.9),
    ("Trương", 0.8),
    ("Lâm", 0.6),
    ("Mai", 0.6),
    ("Trịnh", 0.6),
    ("Đoàn", 0.6),
    ("Cao", 0.5),
    ("Lương", 0.5),
    ("Hà", 0.5),
    ("Tạ", 0.3),
    ("Tô", 0.3),
    ("Chu", 0.3),
    ("Phùng", 0.3),
    ("Nông", 0.3),
    ("Thái", 0.3),
    ("Vương", 0.3),
    ("Lưu", 0.3),
    ("Triệu", 0.2),
    ("Quách", 0.2),
    ("Kiều", 0.2),
    ("Châu", 0.2),
    ("Giang", 0.2),
    ("Khúc", 0.1),
    ("Âu", 0.1),
    ("Tăng", 0.1),
    ("Hứa", 0.1),
)

# Older generations mostly carry Văn / Thị; younger ones a wider choice.
TRADITIONAL_MIDDLE = {Gender.MALE: "Văn", Gender.FEMALE: "Thị"}
MIDDLE_NAMES = {
    Gender.MALE: _nfc(
        (
            "Hữu",
            "Đức",
            "Quốc",
            "Minh",
            "Thành",
            "Công",
            "Gia",
            "Trung",
            "Hoàng",
            "Xuân",
            "Đình",
            "Ngọc",
            "Anh",
            "Quang",
            "Tuấn",
            "Bảo",
            "Duy",
            "Thanh",
            "Mạnh",
            "Nhật",
            "Phúc",
            "Văn",
            "Tiến",
            "Hải",
            "Đăng",
            "Khánh",
        )
    ),
    Gender.FEMALE: _nfc(
        (
            "Ngọc",
            "Thu",
            "Kim",
            "Thanh",
            "Bảo",
            "Hoài",
            "Mai",
            "Phương",
            "Thùy",
            "Khánh",
            "Minh",
            "Hồng",
            "Diệu",
            "Quỳnh",
            "Hải",
            "Bích",
            "Tuyết",
            "Lan",
            "Gia",
            "Cẩm",
            "Thị",
            "Mỹ",
            "Như",
            "Yến",
            "Hà",
        )
    ),
}
GIVEN_NAMES = {
    Gender.MALE: _nfc(
        (
            "An",
            "Anh",
            "Bảo",
            "Bình",
            "Cường",
            "Dũng",
            "Duy",
            "Đạt",
            "Đức",
            "Dương",
            "Hải",
            "Hiếu",
            "Hòa",
            "Hoàng",
            "Hùng",
            "Huy",
            "Hưng",
            "Khang",
            "Khánh",
            "Khoa",
            "Khôi",
            "Kiên",
            "Kiệt",
            "Lâm",
            "Long",
            "Lộc",
            "Lợi",
            "Luân",
            "Minh",
            "Nam",
            "Nghĩa",
            "Nhân",
            "Phát",
            "Phong",
            "Phúc",
            "Quân",
            "Quang",
            "Sơn",
            "Tài",
            "Tâm",
            "Thắng",
            "Thành",
            "Thiện",
            "Thịnh",
            "Tiến",
            "Toàn",
            "Trí",
            "Trung",
            "Tuấn",
            "Tùng",
            "Việt",
            "Vinh",
            "Vũ",
            "Đăng",
            "Hậu",
            "Thái",
        )
    ),
    Gender.FEMALE: _nfc(
        (
            "An",
            "Anh",
            "Ánh",
            "Bích",
            "Châu",
            "Chi",
            "Diệp",
            "Dung",
            "Duyên",
            "Giang",
            "Hà",
            "Hạnh",
            "Hằng",
            "Hiền",
            "Hoa",
            "Hồng",
            "Huệ",
            "Hương",
            "Huyền",
            "Khánh",
            "Lan",
            "Liên",
            "Linh",
            "Loan",
            "Ly",
            "Mai",
            "My",
            "Nga",
            "Ngân",
            "Ngọc",
            "Nhi",
            "Nhung",
            "Oanh",
            "Phương",
            "Quyên",
            "Quỳnh",
            "Tâm",
            "Thảo",
            "Thoa",
            "Thu",
            "Thúy",
            "Thủy",
            "Trâm",
            "Trang",
            "Trinh",
            "Tú",
            "Uyên",
            "Vân",
            "Vy",
            "Xuân",
            "Yến",
            "Hạ",
        )
    ),
}

# Provinces whose share of births is well above the rest (percent); every
# other province code counts PROVINCE_DEFAULT_WEIGHT.
PROVINCE_WEIGHTS = {
    "079": 9.5,
    "001": 8.5,
    "038": 3.7,
    "040": 3.4,
    "075": 3.3,
    "074": 2.8,
    "031": 2.1,
    "089": 1.9,
    "034": 1.9,
    "036": 1.8,
    "066": 1.9,
    "064": 1.6,
    "091": 1.8,
    "087": 1.6,
}
PROVINCE_DEFAULT_WEIGHT = 1.2

# Licence-plate prefixes of the provinces (vehicle registrations).
PLATE_PREFIXES = (
    "29", "30", "31", "32", "33", "40", "43", "47", "49", "51", "59", "61", "65", "72", "92",
    "14", "15", "34", "35", "36", "37", "38", "48", "66", "68", "74", "75", "76", "77", "79",
    "81", "82", "83", "84", "85", "86", "88", "89", "90", "93", "94", "95", "97", "98", "99",
)  # fmt: skip


@dataclass(frozen=True)
class Nationality:
    """Foreign residents of one nationality: how they are named, what their
    passport numbers look like (letters, then how many digits) and where
    passports are issued."""

    code: str  # ISO 3166-1 alpha-3
    weight: float
    family: tuple[str, ...]
    given_male: tuple[str, ...]
    given_female: tuple[str, ...]
    family_first: bool  # "Kim Min-jun" rather than "James Smith"
    # "#": a digit (at least 7 of them: numbers stay distinct), "@": a
    # letter drawn at random, anything else as it stands.
    passport_layout: str
    issue_places: tuple[str, ...]


NATIONALITIES: tuple[Nationality, ...] = (
    Nationality(
        "KOR", 25, ("Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim"),
        ("Min-jun", "Seo-jun", "Ji-ho", "Hyun-woo", "Jae-won", "Dong-hyun", "Sung-min"),
        ("Seo-yeon", "Ji-woo", "Min-seo", "Ha-eun", "Soo-ah", "Yu-na", "Eun-ji"),
        True, "M########", ("Seoul", "Busan", "Incheon"),
    ),
    Nationality(
        "CHN", 20, ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou"),
        ("Wei", "Lei", "Jun", "Tao", "Hao", "Qiang", "Bo"),
        ("Fang", "Min", "Jing", "Yan", "Hui", "Xiuying", "Li"),
        True, "E########", ("Beijing", "Shanghai", "Guangzhou", "Nanning", "Kunming"),
    ),
    Nationality(
        "JPN", 10, ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto"),
        ("Haruto", "Sota", "Yuto", "Riku", "Kenji", "Takeshi"),
        ("Yui", "Aoi", "Sakura", "Hina", "Yuki", "Akiko"),
        True, "@@#######", ("Tokyo", "Osaka", "Nagoya"),
    ),
    Nationality(
        "TWN", 8, ("Chen", "Lin", "Huang", "Chang", "Wang", "Tsai"),
        ("Chia-hao", "Chih-ming", "Wei-lun", "Chun-chieh"),
        ("Yu-ting", "Shu-fen", "Mei-ling", "Ya-ting"),
        True, "#########", ("Taipei", "Kaohsiung", "Taichung"),
    ),
    Nationality(
        "USA", 6, ("Smith", "Johnson", "Brown", "Williams", "Miller", "Davis", "Garcia"),
        ("James", "John", "Michael", "David", "William", "Daniel"),
        ("Mary", "Emily", "Sarah", "Jessica", "Olivia", "Emma"),
        False, "#########", ("Washington", "New York", "Los Angeles", "Houston"),
    ),
    Nationality(
        "THA", 4, ("Saetang", "Srisuk", "Wongsakul", "Chaiyaphum", "Boonmee"),
        ("Somchai", "Anan", "Kittisak", "Prasert"),
        ("Siriporn", "Malee", "Ploy", "Kanya"),
        False, "@@#######", ("Bangkok", "Chiang Mai"),
    ),
    Nationality(
        "LAO", 4, ("Phommachanh", "Sisavath", "Keomany", "Vongsa"),
        ("Bounmy", "Khamphone", "Souksavanh", "Phouvong"),
        ("Phonevilay", "Vanida", "Manivone", "Souphaphone"),
        False, "P#######", ("Vientiane", "Luang Prabang", "Savannakhet"),
    ),
    Nationality(
        "KHM", 4, ("Sok", "Chan", "Heng", "Meas", "Pich"),
        ("Sokha", "Dara", "Vuthy", "Rithy"),
        ("Sreymom", "Chanthy", "Bopha", "Sophea"),
        True, "N#######", ("Phnom Penh", "Siem Reap"),
    ),
    Nationality(
        "IND", 3, ("Sharma", "Patel", "Singh", "Kumar", "Gupta"),
        ("Arjun", "Rahul", "Vikram", "Rohan"),
        ("Priya", "Ananya", "Kavya", "Neha"),
        False, "@#######", ("New Delhi", "Mumbai", "Chennai"),
    ),
    Nationality(
        "PHL", 3, ("Santos", "Reyes", "Cruz", "Bautista", "Garcia"),
        ("Jose", "Mark", "Juan", "Paolo"),
        ("Maria", "Angelica", "Kristine", "Joy"),
        False, "P#######", ("Manila", "Cebu", "Davao"),
    ),
    Nationality(
        "FRA", 3, ("Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Girard"),
        ("Jean", "Pierre", "François", "Louis", "Théo"),
        ("Marie", "Camille", "Élodie", "Chloé", "Léa"),
        False, "##@@#####", ("Paris", "Lyon", "Marseille"),
    ),
    Nationality(
        "GBR", 3, ("Smith", "Jones", "Taylor", "Brown", "Evans", "Wilson"),
        ("Oliver", "George", "Harry", "Jack"),
        ("Amelia", "Isla", "Ava", "Sophie"),
        False, "#########", ("London", "Manchester"),
    ),
    Nationality(
        "DEU", 2, ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Schäfer"),
        ("Jürgen", "Lukas", "Felix", "Jonas", "Matthias"),
        ("Anna", "Lena", "Sophie", "Jana", "Katrin"),
        False, "C########", ("Berlin", "München", "Köln"),
    ),
    Nationality(
        "AUS", 3, ("Smith", "Nguyen", "Williams", "Brown", "Wilson", "Taylor"),
        ("Jack", "Lachlan", "Noah", "Thomas"),
        ("Charlotte", "Mia", "Chloe", "Grace"),
        False, "P@#######", ("Canberra", "Sydney", "Melbourne"),
    ),
    Nationality(
        "CAN", 2, ("Tremblay", "Roy", "Gagnon", "Smith", "Martin", "Côté"),
        ("Liam", "Ethan", "Benoît", "Owen"),
        ("Emma", "Olivia", "Zoé", "Chloé"),
        False, "@@#######", ("Ottawa", "Toronto", "Vancouver", "Montréal"),
    ),
)  # fmt: skip
