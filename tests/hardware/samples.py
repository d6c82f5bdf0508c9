"""Fixed ticket slips for the printing tests, in real Arabic, Sorani and English."""

from __future__ import annotations

from hardware import TicketSlip

SLIPS = {
    "ar": TicketSlip(
        lang="ar",
        centre="مركز خدمات المواطنين في أربيل",
        number="A-007",
        number_local="A-٠٠٧",
        service="وثائق الأحوال المدنية",
        issued_at_text="وقت الإصدار: ٠٩:٤١",
        ahead_text="٣ أشخاص قبلك",
        wait_text="الانتظار المتوقع: ١٥ دقيقة تقريباً",
        counter_text="الشباك: ٢",
        fee_text="هذه الخدمة مجانية",
        qr="https://kiosk.example.invalid/t/A-007?at=20261122T0941",
        footer="احتفظ بهذه التذكرة حتى يُنادى رقمك",
    ),
    "ckb": TicketSlip(
        lang="ckb",
        centre="بەڕێوەبەرایەتی خزمەتگوزارییەکانی هاووڵاتیان",
        number="B-012",
        number_local="B-٠١٢",
        service="بەڵگەنامەکانی باری شارستانی",
        issued_at_text="کاتی دەرچوون: ١٠:٠٥",
        ahead_text="٥ کەس لە پێش تۆن",
        wait_text="چاوەڕوانی: نزیکەی ٢٠ خولەک",
        counter_text="",
        fee_text="ئەم خزمەتگوزارییە بێبەرامبەرە",
        qr="https://kiosk.example.invalid/t/B-012?at=20261122T1005",
        footer="ژمارەی بلیت: B-012 - ئەم بلیتە هەڵبگرە",
    ),
    "en": TicketSlip(
        lang="en",
        centre="Erbil Citizen Services Centre",
        number="C-103",
        number_local="C-103",
        service="Compensation claims",
        issued_at_text="Issued at 11:30",
        ahead_text="12 people ahead of you",
        wait_text="",
        counter_text="Counter 3",
        fee_text="Official fee: 5,000 IQD",
        qr="https://kiosk.example.invalid/t/C-103?at=20261122T1130",
        footer="",
    ),
}
