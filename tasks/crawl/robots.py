"""robots.txt rules from a fetch's outcome, per RFC 9309 section 2.3.1."""

from __future__ import annotations

from urllib.robotparser import RobotFileParser

MAX_ROBOTS_BYTES = 512 * 1024  # RFC 9309 2.5: crawlers must parse at least 500 KiB


def robots_rules(status: int | None, text: str = "") -> RobotFileParser:
    """Return the rules a robots.txt fetch implies: parsed on 2xx, allow-all on 4xx or no answer, disallow-all on 5xx.

    ``status`` is None when the fetch failed (DNS, connection, timeout). RFC 9309 would treat an
    unreachable robots.txt as disallow-all; we allow, since the page fetches that follow fail the
    same way and are rejected with the real reason.

    >>> robots_rules(200, "User-agent: *\\nDisallow: /private/").can_fetch("bot", "http://h.cn/private/a")
    False
    >>> robots_rules(503).can_fetch("bot", "http://h.cn/")
    False
    """
    rules = RobotFileParser()
    if status is not None and 500 <= status < 600:
        rules.disallow_all = True
    elif status is not None and 200 <= status < 300:
        rules.parse(text.splitlines())
    else:
        rules.allow_all = True
    return rules
