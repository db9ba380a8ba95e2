"""Streaming log template mining: masking, a Drain-style parse tree, content-derived cluster ids.

``TemplateMiner.add(body) -> Match`` puts one log line into a cluster (a template with ``<*>``
for its variable parts) as it streams past. Per line:

1. **masking** (:func:`mask`): one built-in rule set replaces variable tokens with ``<*>``:
   URLs, e-mail addresses, file paths, quoted words and the values of ``key=value`` pairs, then
   everything from a digit to the end of its token part: numbers, hex ids, UUIDs, IPv4/IPv6
   addresses and ports, timestamps and dates, durations, numbered names (``node-<*>``). A few
   compiled regexes over the line (C speed), the word rules only when their mark is present.
2. **lookup**: a line seen before verbatim, or whose masked token sequence is known, costs one
   dict lookup (exact-line and masked-sequence caches; O(tokens) for hashing).
3. **Drain's parse tree** for unseen sequences: candidates share the token count and the first
   ``depth`` tokens (a token that is ``<*>`` or holds a digit goes down the wildcard branch);
   the line joins the most similar template (share of equal constant tokens >= ``sim``), whose
   differing positions become ``<*>``, or starts a new cluster.

Cluster ids are derived from content: the hash of the cluster's masked template (16 hex
characters), so the same template gets the same id in another process or after a restart
without coordination. When a template generalizes (a position turns out to be a variable), the
generalized template is a cluster of its own, with the id of its own content, and the clusters
it covers become its aliases (``resolve``; ``Match.replaces`` lists them): ids handed out stay
valid, and two workers that saw different first variants end with the same id. The state is
plain Python (it pickles for Bytewax snapshots).

>>> m = TemplateMiner()
>>> a = m.add("connected to 10.0.0.1:5432 in 12ms")
>>> b = m.add("connected to 10.0.0.7:5432 in 3ms")
>>> a.cluster_id == b.cluster_id, b.template
(True, 'connected to <*> in <*>')
>>> ids = [m.add(f"user {u} logged in").cluster_id for u in ("ann", "bob", "cy", "di", "ed")]
>>> len(set(ids[:4])), m.resolve(ids[0]) == ids[4], m.clusters[ids[4]].template
(4, True, 'user <*> logged in')
>>> ids[4] == template_id(("user", "<*>", "logged", "in"))  # its own content's id
True
>>> m.add("VM Started").cluster_id != m.add("VM Stopped").cluster_id  # few words: events
True
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

WILD = "<*>"

# One rule set. Variables without a digit come first (URLs, e-mail addresses, file paths,
# quoted words, the values of key=value pairs); that pass runs only on lines holding one of
# their marks. Then every token part holding a digit is a variable: numbers, hex ids, UUIDs,
# IPv4/IPv6 addresses and ports, timestamps and dates, durations (``12ms``), numbered names
# (``node-12``). Token parts end at spaces and ``= : , ; ( ) [ ] { } " '``, so ``size=42``
# keeps its key and ``10.0.0.1:5432`` becomes one wildcard once runs are collapsed.
_WORD_RULES = [  # (marks that must be in the line, regex)
    (("://",), r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+"),  # URL
    (("@",), r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),  # e-mail
    (('"', "'"), r"\"[^\"\s]*\"|'[^'\s]*'"),  # a quoted word is a value; a quoted phrase is read
    (("/",), r"/(?<![\w.:/]/)[\w.@%+~-]+(?:/[\w.@%+~-]+)+/?"),  # a file path (2+ parts)
    (("\\",), r"(?<![\w])[A-Za-z]:\\[^\s]+"),  # a Windows path
    (("=",), r"(?<=[\w\]]=)[^\s,;&\"')\]]+"),  # the value of key=value
]
_WORDS = [(marks, re.compile(rx)) for marks, rx in _WORD_RULES]
_SEP = r"\s=:,;()\[\]{}\"'"
# from a token part's first digit to its end ("node-12" -> "node-<*>", "10.0.0.1:80" -> "<*>:<*>"),
# or the whole part when it starts with hex letters before its first digit ("deadbeef42", "fe80")
_DIGITS = re.compile(rf"[a-fA-F\d](?:(?<=\d)[^{_SEP}]*+|(?<![^{_SEP}][a-fA-F])[a-fA-F]*+\d[^{_SEP}]*+)")
_WILDS = re.compile(r"(?:<\*>)+")
# a token made only of wildcards and separators (a list of addresses, a range) is one wildcard
_WILD_JOINTS = tuple(WILD + c for c in ",;:/|.-")
_WILD_TOKEN = re.compile(r"(?<!\S)(?:<\*>[,;:/|.-]*)+(?:<\*>)(?!\S)")


def mask(body: str) -> str:
    """The line with its variable parts replaced by ``<*>`` (runs of them by one).

    >>> mask('GET /api/v2/users/8c1f9a3e-12ab-4cde-9f00-112233445566 from 10.1.2.3:8080 took 12.5ms')
    'GET <*> from <*> took <*>'
    >>> mask('blk_-1608999687919862906 terminating, retry=3 user="bob" at 0x7ffe12 said "no way"')
    'blk_-<*> terminating, retry=<*> user=<*> at <*> said "no way"'
    >>> mask('session opened for user root by (uid=0)')
    'session opened for user root by (uid=<*>)'
    """
    for marks, rx in _WORDS:
        if marks[0] in body or (len(marks) > 1 and marks[1] in body):
            body = rx.sub(WILD, body)
    body = _DIGITS.sub(WILD, body)
    if "<*><*>" in body:
        body = _WILDS.sub(WILD, body)
    if any(w in body for w in _WILD_JOINTS):
        body = _WILD_TOKEN.sub(WILD, body)
    return body


def _has_digit(tok: str) -> bool:
    return any(c.isdigit() for c in tok)


def template_id(tokens: Tuple[str, ...]) -> str:
    """Content-derived cluster id: the first 16 hex digits of SHA-1 over the template."""
    return hashlib.sha1(" ".join(tokens).encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass
class Cluster:
    cluster_id: str
    tokens: List[str]
    size: int = 0
    # words seen at constant positions by lines that were otherwise close to this template
    variants: Dict[int, List[str]] = field(default_factory=dict)
    alias_of: Optional[str] = None  # merged into that cluster
    variant_of: Optional[str] = None  # started apart from this close cluster only by a word

    @property
    def template(self) -> str:
        return " ".join(self.tokens)


@dataclass
class Match:
    cluster_id: str
    template: str
    is_new: bool  # the line started a new cluster
    changed: bool  # the line generalized its cluster's template (and may have merged others)
    variant_of: Optional[str] = None  # the close cluster this one differs from by a word or two
    replaces: Tuple[str, ...] = ()  # ids that now resolve to this cluster (on a generalization)


@dataclass
class TemplateMiner:
    """Drain-style streaming template miner over masked lines.

    Parameters: ``sim`` (share of a template's constant tokens a line must equal to be close to
    it), ``var_k`` (a constant position becomes ``<*>`` once close lines have shown this many
    distinct words there; until then each word keeps its own cluster: "VM Started" and "VM
    Stopped" are different events, "user alice" and "user bob" the same one once enough names
    have come by), ``depth`` (leading tokens that route a line in the parse tree),
    ``max_children`` (distinct leading tokens per node before the rest go down the wildcard
    branch), ``cache_size`` (exact lines and masked sequences remembered for the O(1) paths;
    each cache is cleared when full).
    """

    sim: float = 0.5
    var_k: int = 5
    depth: int = 1
    max_children: int = 100
    cache_size: int = 200_000
    # -- state
    clusters: Dict[str, Cluster] = field(default_factory=dict)
    tree: Dict[tuple, List[str]] = field(default_factory=dict)  # (len, tok0..) -> cluster ids
    children: Dict[tuple, int] = field(default_factory=dict)  # (len, prefix) -> distinct next tokens
    cache: Dict[Tuple[str, ...], str] = field(default_factory=dict)
    lines: Dict[str, str] = field(default_factory=dict)  # exact lines seen -> cluster id

    def _route(self, toks: Tuple[str, ...]) -> tuple:
        key: list = [len(toks)]
        for i in range(min(self.depth, len(toks))):
            t = toks[i]
            if t == WILD or _has_digit(t):
                t = WILD
            else:
                node = (len(toks), *key[1:])
                seen = self.children.get(node + (t,))
                if seen is None:
                    count = self.children.get(node, 0)
                    if count >= self.max_children:
                        t = WILD
                    else:
                        self.children[node] = count + 1
                        self.children[node + (t,)] = 1
            key.append(t)
        return tuple(key)

    @staticmethod
    def _similarity(tmpl: List[str], toks: Tuple[str, ...]) -> Tuple[float, int]:
        same = wild = 0
        for a, b in zip(tmpl, toks):
            if a == WILD:
                wild += 1
            elif a == b:
                same += 1
        return same / len(toks), wild

    def resolve(self, cid: str) -> str:
        """The cluster a (possibly merged) cluster id now belongs to."""
        c = self.clusters[cid]
        while c.alias_of is not None:
            c = self.clusters[c.alias_of]
        return c.cluster_id

    def add(self, body: str) -> Match:
        cid = self.lines.get(body)
        if cid is None:
            toks = tuple(mask(body).split())
            cid = self.cache.get(toks)
            if cid is not None:
                self._remember_line(body, cid)
        else:
            toks = ()
        if cid is not None:
            c = self.clusters[cid]
            if c.alias_of is not None:
                c = self.clusters[self.resolve(cid)]
            c.size += 1
            return Match(c.cluster_id, c.template, False, False, c.variant_of)
        if not toks:
            toks = ("",)
        key = self._route(toks)
        bucket = self.tree.setdefault(key, [])
        best, best_sim, best_wild = None, -1.0, -1
        for cid in bucket:
            s, w = self._similarity(self.clusters[cid].tokens, toks)
            if s > best_sim or (s == best_sim and w > best_wild):
                best, best_sim, best_wild = cid, s, w
        if best is not None and best_sim >= self.sim:
            c = self.clusters[best]
            diff = [i for i, (a, b) in enumerate(zip(c.tokens, toks)) if a != b and a != WILD]
            if not diff:
                c.size += 1
                self._remember(toks, best)
                self._remember_line(body, best)
                return Match(best, c.template, False, False)
            ready = True
            for i in diff:
                if WILD in toks[i] or WILD in c.tokens[i]:
                    continue  # a masked part differs ("blk_<*>" / "blk_-<*>"): a variable
                seen = c.variants.setdefault(i, [c.tokens[i]])
                if toks[i] not in seen and len(seen) < self.var_k:
                    seen.append(toks[i])
                if len(seen) < self.var_k:
                    ready = False
            if ready:
                target = self._generalize(c, diff, bucket)
                target.size += 1
                self._remember(toks, target.cluster_id)
                self._remember_line(body, target.cluster_id)
                replaced = tuple(k for k, x in self.clusters.items()
                                 if x.alias_of is not None and self.resolve(k) == target.cluster_id)
                return Match(target.cluster_id, target.template, False, True, None, replaced)
        cid = template_id(toks)
        while cid in self.clusters:  # the same first template elsewhere in the tree: rare
            cid = template_id(toks + (cid,))
        variant = best if best is not None and best_sim >= self.sim else None
        self.clusters[cid] = Cluster(cid, list(toks), 1, variant_of=variant)
        bucket.append(cid)
        self._remember(toks, cid)
        self._remember_line(body, cid)
        return Match(cid, self.clusters[cid].template, True, False, variant)

    def seed(self, cluster_id: str, template: str) -> None:
        """Adopt a stored cluster (a restart or a new worker starts from the stored templates,
        so their lines keep their ids even where the template had generalized)."""
        if cluster_id in self.clusters:
            return
        toks = tuple(template.split()) or ("",)
        self.clusters[cluster_id] = Cluster(cluster_id, list(toks), 0)
        self.tree.setdefault(self._route(toks), []).append(cluster_id)
        self._remember(toks, cluster_id)

    def _generalize(self, c: Cluster, diff: List[int], bucket: List[str]) -> Cluster:
        """``c`` with ``diff`` positions made variable becomes the cluster of the generalized
        template, whose id is derived from that template: two workers (or runs) that saw
        different first variants end with the same id. ``c`` and the clusters the new template
        covers become its aliases."""
        tokens = list(c.tokens)
        for i in diff:
            tokens[i] = WILD
        new_id = template_id(tuple(tokens))
        target = self.clusters.get(new_id)
        if target is not None and target.alias_of is not None:
            target = self.clusters[self.resolve(new_id)]
        if target is None:
            target = self.clusters[new_id] = Cluster(new_id, tokens, 0, variant_of=c.variant_of)
            bucket.append(new_id)
        self._absorb(target, bucket)  # c is in the bucket and its template is covered
        return target

    def _absorb(self, c: Cluster, bucket: List[str]) -> None:
        """Merge into ``c`` the clusters of its bucket that its generalized template covers;
        their ids become aliases of ``c``'s (ids handed out stay valid)."""
        keep = []
        for other in bucket:
            o = self.clusters[other]
            if other != c.cluster_id and (o.alias_of is not None
                                          or all(a == WILD or a == b for a, b in zip(c.tokens, o.tokens))):
                if o.alias_of is None:
                    o.alias_of = c.cluster_id
                    c.size += o.size
                for i, vals in o.variants.items():
                    if c.tokens[i] != WILD:
                        mine = c.variants.setdefault(i, [c.tokens[i]])
                        mine.extend(v for v in vals if v not in mine)
            else:
                keep.append(other)
        bucket[:] = keep

    def _remember_line(self, body: str, cid: str) -> None:
        if len(self.lines) >= self.cache_size:
            self.lines.clear()
        self.lines[body] = cid

    def _remember(self, toks: Tuple[str, ...], cid: str) -> None:
        if len(self.cache) >= self.cache_size:
            self.cache.clear()
        self.cache[toks] = cid


def group(lines, **kw) -> List[str]:
    """Cluster id of each line, one miner over the whole sequence (for benchmarks); ids of
    clusters merged later resolve to the cluster they joined."""
    m = TemplateMiner(**kw)
    ids = [m.add(x).cluster_id for x in lines]
    return [m.resolve(i) for i in ids]


def near_duplicates(templates: Dict[str, str], threshold: float = 0.8, num_perm: int = 64) -> List[Tuple[str, str]]:
    """Pairs (alias, canonical) of templates of *different lengths* whose constant words are
    near-duplicates (MinHash LSH candidates, confirmed by exact Jaccard >= ``threshold``): the
    parse tree keeps lines of different token counts apart, so "connection reset by peer" and
    "connection reset by peer (retrying)" would otherwise stay two clusters. Same-length
    templates are left to the tree and its variant rule ("VM Started" / "VM Stopped" are
    different events). The canonical id of a group is its smallest id, so every process that
    runs this over the same templates merges the same way.

    >>> pairs = near_duplicates({"b": "connection reset by peer <*> after <*> retries on socket",
    ...                          "a": "connection reset by peer <*> after <*> retries on socket (gave up)",
    ...                          "c": "user <*> logged in"})
    >>> pairs
    [('b', 'a')]
    """
    from datasketch import MinHash, MinHashLSH

    words = {cid: frozenset(w for w in t.split() if w != WILD) for cid, t in templates.items()}
    lengths = {cid: len(t.split()) for cid, t in templates.items()}
    # LSH finds candidates at a lower similarity (MinHash estimates scatter); exact Jaccard decides
    lsh = MinHashLSH(threshold=max(0.3, threshold - 0.2), num_perm=num_perm)
    hashes = {}
    for cid in sorted(words):
        if not words[cid]:
            continue
        mh = MinHash(num_perm=num_perm)
        mh.update_batch([w.encode("utf-8", "surrogatepass") for w in words[cid]])
        hashes[cid] = mh
        lsh.insert(cid, mh)
    parent: Dict[str, str] = {}

    def root(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for cid in sorted(hashes):
        for other in lsh.query(hashes[cid]):
            if other == cid or lengths[other] == lengths[cid]:
                continue
            a, b = words[cid], words[other]
            if len(a & b) / len(a | b) >= threshold:
                ra, rb = root(cid), root(other)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    return sorted((cid, root(cid)) for cid in parent if root(cid) != cid)
