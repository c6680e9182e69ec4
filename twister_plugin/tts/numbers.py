"""Read a number expression aloud in Mandarin (Han characters) or English (words).

A number expression is one match of NUMBER_RE: optional currency sign and minus, digits with
optional thousands commas and decimals, then an optional "%" or English ordinal suffix; or a
clock time "12:30"; or a fraction "3/4". Mandarin uses cn2an, English uses inflect.
"""
from __future__ import annotations

import functools
import re
from typing import Protocol

import cn2an

NUMBER_RE = re.compile(
    r"(?P<time>\d{1,2}:\d{2})(?!\d)"
    r"|(?P<frac>\d{1,4}/\d{1,4})(?![\d/])"
    r"|(?P<cur>[$¥€£])?(?P<neg>(?<![\w.])-)?(?P<num>\d+(?:,\d{3})*(?:\.\d+)?)"
    r"(?:(?P<pct>%)|(?P<ord>st|nd|rd|th)(?![A-Za-z]))?"
)
_MAX_CARDINAL_DIGITS = 8  # longer digit strings (phone numbers, ids) are read digit by digit
_ZH_DIGITS = "零一二三四五六七八九"
_ZH_CURRENCY = {"$": "美元", "¥": "元", "€": "欧元", "£": "英镑"}
_ZH_TWO_AS_LIANG = set("个只位条件次本张种台辆家项份句位双对杯碗")  # 2 + measure word -> 两
_EN_CURRENCY = {"$": ("dollar", "dollars"), "¥": ("yuan", "yuan"), "€": ("euro", "euros"),
                "£": ("pound", "pounds")}
_EN_DIGITS = "zero one two three four five six seven eight nine".split()


class NumberReader(Protocol):
    def read(self, match: re.Match, next_char: str) -> str:
        """The spoken form of ``match`` (a NUMBER_RE match); ``next_char`` follows it."""


def _is_digit_string(num: str) -> bool:
    """Leading zero ("007") or too long for a cardinal: read digit by digit."""
    plain = num.replace(",", "")
    return ("." not in plain and len(plain) > 1 and plain.startswith("0")) or len(
        plain.split(".")[0]) > _MAX_CARDINAL_DIGITS


class ZhNumberReader:
    """Mandarin: 2024年 -> 二零二四年, 3.5% -> 百分之三点五, 第3名 -> 第三名, 2个 -> 两个."""

    def read(self, m: re.Match, next_char: str) -> str:
        if m["time"]:
            hour, minute = m["time"].split(":")
            tail = "" if minute == "00" else self._card(minute.lstrip("0") or "0") + "分"
            return self._card(hour) + "点" + tail
        if m["frac"]:
            num, den = m["frac"].split("/")
            return self._card(den) + "分之" + self._card(num)
        num = m["num"].replace(",", "")
        if m["pct"]:
            spoken = "百分之" + self._number(num)
        elif next_char == "年" and re.fullmatch(r"\d{2}|\d{4}", num):
            spoken = self._digits(num)  # years are read digit by digit
        elif num == "2" and next_char in _ZH_TWO_AS_LIANG:
            spoken = "两"
        else:
            spoken = self._number(num)
        spoken = ("负" if m["neg"] else "") + spoken
        return spoken + _ZH_CURRENCY.get(m["cur"] or "", "")

    def _number(self, num: str) -> str:
        if _is_digit_string(num):
            return self._digits(num)
        whole, _, frac = num.partition(".")
        spoken = cn2an.an2cn(whole)
        if spoken[:2] in ("二千", "二万", "二亿"):
            spoken = "两" + spoken[1:]  # 2000 -> 两千 (the usual reading)
        return spoken + ("点" + self._digits(frac) if frac else "")

    def _card(self, num: str) -> str:
        return cn2an.an2cn(str(int(num)))

    @staticmethod
    def _digits(num: str) -> str:
        return "点".join("".join(_ZH_DIGITS[int(d)] for d in part) for part in num.split("."))


class EnNumberReader:
    """English: 2024 -> twenty twenty four, 3.5% -> three point five percent, 3rd -> third."""

    def read(self, m: re.Match, next_char: str) -> str:
        if m["time"]:
            hour, minute = (int(x) for x in m["time"].split(":"))
            tail = "o'clock" if minute == 0 else ("oh " if minute < 10 else "") + self._card(
                minute)
            return f"{self._card(hour)} {tail}"
        if m["frac"]:
            num, den = (int(x) for x in m["frac"].split("/"))
            return f"{self._card(num)} over {self._card(den)}"
        num = m["num"].replace(",", "")
        if m["ord"] and num.isdigit() and not _is_digit_string(num):
            spoken = _inflect().number_to_words(_inflect().ordinal(int(num)))
        elif "," not in m["num"] and re.fullmatch(r"1[1-9]\d\d|20\d\d", num):
            spoken = self._year(int(num))
        else:
            spoken = self._number(num)
        if m["neg"]:
            spoken = "minus " + spoken
        if m["pct"]:
            spoken += " percent"
        if m["cur"]:
            one, many = _EN_CURRENCY[m["cur"]]
            spoken += " " + (one if num == "1" else many)
        return spoken

    def _number(self, num: str) -> str:
        if _is_digit_string(num):
            return " ".join(_EN_DIGITS[int(d)] if d != "." else "point" for d in num)
        whole, _, frac = num.partition(".")
        spoken = self._card(int(whole))
        return spoken + (" point " + " ".join(_EN_DIGITS[int(d)] for d in frac) if frac else "")

    def _year(self, year: int) -> str:
        if 2000 <= year <= 2009:
            return self._card(year)
        head, tail = divmod(year, 100)
        if tail == 0:
            return f"{self._card(head)} hundred"
        return f"{self._card(head)} {'oh ' if tail < 10 else ''}{self._card(tail)}"

    @staticmethod
    def _card(n: int) -> str:
        return _inflect().number_to_words(n, andword="").replace(",", "")


@functools.lru_cache(maxsize=1)
def _inflect():
    import inflect

    return inflect.engine()
