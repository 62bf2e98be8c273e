"""RFC 9162 Merkle trees over the audit log: roots match the published test vectors, and
proofs verify for every leaf and size pair in small trees and fail when anything is wrong."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from order3.audit.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    StreamingRoot,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

# The leaves and roots published with RFC 6962's reference implementation.
VECTOR_LEAVES = [
    bytes.fromhex(x)
    for x in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
VECTOR_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# Distinct leaves: with repeated leaves, different positions legitimately share a proof.
trees = st.lists(st.binary(max_size=8), min_size=1, max_size=33, unique=True).map(
    lambda leaves: [leaf_hash(leaf) for leaf in leaves]
)


def test_roots_match_the_published_vectors() -> None:
    """Every prefix of the reference leaves hashes to the published root."""
    hashes = [leaf_hash(leaf) for leaf in VECTOR_LEAVES]

    roots = [root_hash(hashes[:size]).hex() for size in range(1, 9)]

    assert roots == VECTOR_ROOTS
    assert root_hash([]) == EMPTY_ROOT


@settings(max_examples=60, deadline=None)
@given(trees)
def test_every_leaf_has_a_proof_at_every_size_that_holds_it(leaves: list[bytes]) -> None:
    """For each tree size and each leaf in it, the inclusion proof verifies."""
    for size in range(1, len(leaves) + 1):
        root = root_hash(leaves[:size])
        for index in range(size):
            proof = inclusion_proof(index, leaves[:size])

            assert verify_inclusion(leaves[index], index, size, proof, root)


@settings(max_examples=60, deadline=None)
@given(trees, st.data())
def test_an_inclusion_proof_fails_for_anything_else(
    leaves: list[bytes], data: st.DataObject
) -> None:
    """A proof does not verify for another leaf, index, root, or a changed or cut proof.

    (The tree size is not pinned by the proof alone: the signed checkpoint pins it.)
    """
    size = len(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, leaves)
    root = root_hash(leaves)
    other = leaf_hash(b"not in the log")

    assert not verify_inclusion(other, index, size, proof, root)
    assert not verify_inclusion(leaves[index], index, size, proof, other)
    assert not verify_inclusion(leaves[index], size, size, proof, root)
    if size > 1:
        wrong_index = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
        assert not verify_inclusion(leaves[index], wrong_index, size, proof, root)
        position = data.draw(st.integers(0, len(proof) - 1))
        changed = [*proof[:position], other, *proof[position + 1 :]]
        assert not verify_inclusion(leaves[index], index, size, changed, root)
        assert not verify_inclusion(leaves[index], index, size, proof[:-1], root)


@settings(max_examples=60, deadline=None)
@given(trees)
def test_every_smaller_tree_is_proved_consistent_with_every_larger(leaves: list[bytes]) -> None:
    """For each pair of sizes m <= n, the consistency proof verifies."""
    for new_size in range(1, len(leaves) + 1):
        new_root = root_hash(leaves[:new_size])
        for old_size in range(1, new_size + 1):
            proof = consistency_proof(old_size, leaves[:new_size])

            assert verify_consistency(
                old_size, new_size, root_hash(leaves[:old_size]), new_root, proof
            )


@settings(max_examples=60, deadline=None)
@given(trees.filter(lambda leaves: len(leaves) >= 2), st.data())
def test_a_rewritten_or_truncated_history_fails_consistency(
    leaves: list[bytes], data: st.DataObject
) -> None:
    """A log whose old part was rewritten, or that lost records, is not consistent."""
    new_size = len(leaves)
    old_size = data.draw(st.integers(1, new_size - 1))
    old_root = root_hash(leaves[:old_size])
    proof = consistency_proof(old_size, leaves)
    position = data.draw(st.integers(0, old_size - 1))
    rewritten = [*leaves[:position], leaf_hash(b"rewritten"), *leaves[position + 1 :]]

    assert not verify_consistency(
        old_size, new_size, old_root, root_hash(rewritten), consistency_proof(old_size, rewritten)
    )
    assert not verify_consistency(old_size, new_size, old_root, root_hash(leaves[:-1]), proof)
    assert not verify_consistency(new_size, old_size, root_hash(leaves), old_root, proof)
    if proof:
        assert not verify_consistency(old_size, new_size, old_root, root_hash(leaves), proof[1:])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=8), max_size=70))
def test_the_streaming_root_matches_the_tree_at_every_size(raw: list[bytes]) -> None:
    """Rebuilding the root one leaf at a time gives the same root at every size."""
    leaves = [leaf_hash(leaf) for leaf in raw]
    stream = StreamingRoot()

    for size, leaf in enumerate(leaves, start=1):
        stream.append(leaf)
        assert stream.root() == root_hash(leaves[:size])

    assert stream.size == len(leaves)


@settings(max_examples=60, deadline=None)
@given(trees, st.integers(1, 4))
def test_the_cached_tree_gives_the_same_roots_and_proofs(
    leaves: list[bytes], cache_level: int
) -> None:
    """Kept subtree roots change nothing: every root and proof equals the plain functions'."""
    tree = MerkleTree(cache_level=cache_level)

    tree.extend(leaves)

    assert tree.size == len(leaves)
    assert tree.root(0) == EMPTY_ROOT
    for size in range(1, len(leaves) + 1):
        assert tree.root(size) == root_hash(leaves[:size])
        for index in range(size):
            assert tree.inclusion_proof(index, size) == inclusion_proof(index, leaves[:size])
        for old_size in range(1, size + 1):
            assert tree.consistency_proof(old_size, size) == consistency_proof(
                old_size, leaves[:size]
            )


def test_the_cached_tree_matches_the_vectors_and_refuses_sizes_it_lacks() -> None:
    """The published roots come out of the cached tree too; sizes beyond it are refused."""
    tree = MerkleTree(cache_level=1)
    tree.extend(leaf_hash(leaf) for leaf in VECTOR_LEAVES)

    assert [tree.root(size).hex() for size in range(1, 9)] == VECTOR_ROOTS
    with pytest.raises(ValueError, match="no root at size 9"):
        tree.root(9)
    with pytest.raises(ValueError, match="leaf 8 is not in a tree of 8"):
        tree.inclusion_proof(8, 8)
    with pytest.raises(ValueError, match="no tree of 9 leaves"):
        tree.inclusion_proof(0, 9)
    with pytest.raises(ValueError, match="no consistency proof from 0 to 8"):
        tree.consistency_proof(0, 8)
