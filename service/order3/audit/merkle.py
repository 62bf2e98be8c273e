"""Merkle tree hashing and proofs over the audit log, as RFC 9162 (section 2.1) specifies.

Leaves are the RFC 8785 bytes of audit record bodies, in sequence order. A leaf hashes as
SHA-256(0x00 || leaf) and an inner node as SHA-256(0x01 || left || right); the tree over n
leaves splits at the largest power of two below n. With a root hash, an inclusion proof shows
a record is in the log, and a consistency proof shows a larger log extends a smaller one,
so a client holding an old root can tell truncation, rollback or rewriting from growth.

Proof generation works from the list of leaf hashes; verification needs only the proof,
the sizes and the roots, and follows the RFC's algorithms step by step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes (not raw leaves)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_hash(leaves[:k]), root_hash(leaves[k:]))


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) over leaf hashes.

    Raises:
        ValueError: ``index`` is not a leaf of the tree.
    """
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of {len(leaves)}")
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_proof(index, leaves[:k]), root_hash(leaves[k:])]
    return [*inclusion_proof(index - k, leaves[k:]), root_hash(leaves[:k])]


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(old_size, D[n]) over leaf hashes.

    Raises:
        ValueError: ``old_size`` is not between 1 and the tree size.
    """
    if not 0 < old_size <= len(leaves):
        raise ValueError(f"no consistency proof from {old_size} to {len(leaves)}")
    return _subproof(old_size, leaves, complete=True)


def _subproof(m: int, leaves: Sequence[bytes], *, complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root_hash(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete=complete), root_hash(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], complete=False), root_hash(leaves[:k])]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows the leaf hash ``leaf`` at ``index`` in the tree of ``size``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree of ``new_size`` extends the tree of ``old_size``."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the path
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


class StreamingRoot:
    """The root of a growing tree, from its leaf hashes one at a time, in O(log n) memory.

    It keeps the roots of the perfect subtrees the leaves so far make up, largest first;
    folding them from the right gives the RFC 9162 root.
    """

    def __init__(self) -> None:
        self._subtrees: list[tuple[int, bytes]] = []
        self.size = 0

    def append(self, leaf: bytes) -> None:
        size, node = 1, leaf
        while self._subtrees and self._subtrees[-1][0] == size:
            left_size, left = self._subtrees.pop()
            size, node = left_size + size, node_hash(left, node)
        self._subtrees.append((size, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._subtrees:
            return EMPTY_ROOT
        node = self._subtrees[-1][1]
        for _, left in reversed(self._subtrees[:-1]):
            node = node_hash(left, node)
        return node


class MerkleTree:
    """A growing tree that answers roots and proofs at any size with O(log n) hashing.

    Leaf hashes are kept in one buffer (32 bytes each). Records never change once appended,
    so the root of every complete, aligned subtree of at least ``2**cache_level`` leaves is
    also kept, level by level, as soon as its last leaf arrives. Every subtree the RFC 9162
    recursion visits starts at a multiple of its own power-of-two size, so any root or proof
    is put together from O(log n) kept roots plus fewer than ``2**cache_level`` leaf hashes.
    With the default level of 4 the kept roots take an eighth of the leaves' memory.

    Results are identical to `root_hash`, `inclusion_proof` and `consistency_proof` over the
    same leaf hashes.
    """

    def __init__(self, cache_level: int = 4) -> None:
        if cache_level < 1:
            raise ValueError(f"cache_level must be at least 1, got {cache_level}")
        self._cache_level = cache_level
        self._leaves = bytearray()
        self._levels: list[bytearray] = []
        """``_levels[i]`` holds the roots of the complete subtrees of ``2**(cache_level+i)``."""

    @property
    def size(self) -> int:
        return len(self._leaves) // 32

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is not in a tree of {self.size}")
        return bytes(self._leaves[32 * index : 32 * index + 32])

    def leaves(self, size: int) -> list[bytes]:
        """The first ``size`` leaf hashes."""
        return [self.leaf(index) for index in range(size)]

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash and keep the roots of the subtrees it completes."""
        if len(leaf) != 32:
            raise ValueError(f"a leaf hash is 32 bytes, got {len(leaf)}")
        self._leaves += leaf
        size, level = self.size, self._cache_level
        while size % (1 << level) == 0:
            start = size - (1 << level)
            depth = level - self._cache_level
            if depth == 0:
                node = self._compute(start, size)
            else:
                below, index = self._levels[depth - 1], 2 * (start >> level)
                node = node_hash(
                    bytes(below[32 * index : 32 * index + 32]),
                    bytes(below[32 * index + 32 : 32 * index + 64]),
                )
            if depth == len(self._levels):
                self._levels.append(bytearray())
            self._levels[depth] += node
            level += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self, size: int) -> bytes:
        """MTH of the first ``size`` leaves.

        Raises:
            ValueError: the tree has fewer than ``size`` leaves.
        """
        if not 0 <= size <= self.size:
            raise ValueError(f"no root at size {size} in a tree of {self.size}")
        return EMPTY_ROOT if size == 0 else self._subtree(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[size]), as `inclusion_proof` gives it.

        Raises:
            ValueError: ``index`` is not a leaf of the tree of ``size``, or the tree has
                fewer than ``size`` leaves.
        """
        if not 0 <= size <= self.size:
            raise ValueError(f"no tree of {size} leaves: it has {self.size}")
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of {size}")
        proof, start, end = [], 0, size
        while end - start > 1:  # walk down to the leaf; the siblings come out top first
            k = _split(end - start)
            if index < start + k:
                proof.append(self._subtree(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree(start, start + k))
                start += k
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """PROOF(old_size, D[new_size]), as `consistency_proof` gives it.

        Raises:
            ValueError: ``old_size`` is not between 1 and ``new_size``, or the tree has fewer
                than ``new_size`` leaves.
        """
        if not 0 < old_size <= new_size <= self.size:
            raise ValueError(f"no consistency proof from {old_size} to {new_size}")
        proof, start, end, m, complete = [], 0, new_size, old_size, True
        while m != end - start:
            k = _split(end - start)
            if m <= k:
                proof.append(self._subtree(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree(start, start + k))
                start, m, complete = start + k, m - k, False
        if not complete:
            proof.append(self._subtree(start, end))
        proof.reverse()
        return proof

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH of leaves ``start`` to ``end``, where ``start`` is aligned as RFC 9162 splits."""
        size = end - start
        if size & (size - 1) == 0:
            level = size.bit_length() - 1
            if level >= self._cache_level:
                nodes = self._levels[level - self._cache_level]
                index = start >> level
                return bytes(nodes[32 * index : 32 * index + 32])
        return self._compute(start, end)

    def _compute(self, start: int, end: int) -> bytes:
        size = end - start
        if size == 1:
            return bytes(self._leaves[32 * start : 32 * start + 32])
        k = _split(size)
        return node_hash(self._subtree(start, start + k), self._subtree(start + k, end))
