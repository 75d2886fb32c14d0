"""The resulting license of a release made of sources under several licenses.

A reading for convenience, not legal advice: each source's own terms still apply to its rows, and the
card lists them. The rule: one license for all sources -> that license; any source unknown ->
``unknown``; otherwise the most restrictive of the known ones, where non-commercial and share-alike
terms carry over to the whole (NC + SA -> ``cc-by-nc-sa-4.0``; two different share-alike licenses ->
``other``), and among permissive licenses the one asking most (attribution with notices) wins.
Licenses outside this table, mixed with others, give ``other``.
"""

from __future__ import annotations

from collections.abc import Iterable

UNKNOWN = "unknown"
# Permissive licenses, least to most demanding (a mix is released under the last one present).
PERMISSIVE = ["cc0-1.0", "unlicense", "mit", "bsd-2-clause", "bsd-3-clause", "apache-2.0", "cc-by-4.0"]
SHARE_ALIKE = {"cc-by-sa-4.0", "odbl"}
NON_COMMERCIAL = {"cc-by-nc-4.0"}
NON_COMMERCIAL_SHARE_ALIKE = {"cc-by-nc-sa-4.0"}


def source_licenses(sources: Iterable[str], licenses: dict[str, str], default: str | None) -> dict[str, str]:
    """{source: license} for every source, ``default`` (or ``unknown``) where none is given."""
    return {source: licenses.get(source) or default or UNKNOWN for source in sources}


def combined_license(licenses: Iterable[str]) -> str:
    """The license the release as a whole is published under (see the module docstring)."""
    found = set(licenses)
    if not found:
        return UNKNOWN
    if len(found) == 1:
        return next(iter(found))
    if UNKNOWN in found:
        return UNKNOWN
    known = set(PERMISSIVE) | SHARE_ALIKE | NON_COMMERCIAL | NON_COMMERCIAL_SHARE_ALIKE
    if not found <= known:
        return "other"
    nc = bool(found & (NON_COMMERCIAL | NON_COMMERCIAL_SHARE_ALIKE))
    sa = bool(found & (SHARE_ALIKE | NON_COMMERCIAL_SHARE_ALIKE))
    if nc and sa:
        return "cc-by-nc-sa-4.0"
    if nc:
        return "cc-by-nc-4.0"
    if sa:
        share_alike = found & SHARE_ALIKE
        return share_alike.pop() if len(share_alike) == 1 else "other"  # cc-by-sa and odbl clash
    return max(found, key=PERMISSIVE.index)
