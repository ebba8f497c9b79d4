"""diff, rollback and list over a scripted history of releases."""

from __future__ import annotations

from troupe.release import manifest as manifests

from .release_history import Scripted, customer_proto


def three_customer_changes_and_a_new_field(repo: Scripted) -> list[str]:
    subjects = ["Customer: normalize phones", "Customer: loyalty", "Customer: rebuild for email"]
    for i, subject in enumerate(subjects[:2]):
        repo.write(f"services/customer/change{i}.py", f"# {subject}\n")
        repo.commit(subject)
    repo.write("contracts/customer/v1/customer.proto", customer_proto("string email = 5;\n"))
    repo.commit("Contracts: customer email")
    repo.write("services/customer/change2.py", "# email\n")
    repo.commit(subjects[2])
    return subjects


def two_releases(base: Scripted) -> list[str]:
    base.release("bump")
    assert base.release("cut", "--notes", "First").code == 0
    subjects = three_customer_changes_and_a_new_field(base)
    base.release("bump", "customer")
    assert base.release("cut", "--notes", "Email").code == 0
    return subjects


def test_diff_shows_changed_components_their_commits_and_contract_changes(
    base: Scripted,
) -> None:
    subjects = two_releases(base)
    before = base.git("log", "-1", "--format=%h", "release-1", "--", "services/customer").strip()
    after = base.last_change("services/customer")

    result = base.release("diff", "1", "2")

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "release 1 → release 2"
    assert lines[1] == f"~ services/customer  {before} → {after}  (3 commits)"
    assert [line.split(" ", 8)[-1] for line in lines[2:5]] == [
        f"{s} (Rita Releaser)" for s in reversed(subjects)
    ]
    assert "= unchanged: composer, services/ticket, sidecar" in lines
    assert "contracts: 1 commit(s)" in lines
    assert any(line.endswith("Contracts: customer email (Rita Releaser)") for line in lines)
    assert "    + field contracts.customer.v1.Customer.email `string = 5`" in lines


def test_diff_against_the_working_manifest(base: Scripted) -> None:
    base.release("bump")
    base.release("cut", "--notes", "First")
    base.write("adapters/sms/__init__.py", "")
    added = base.commit("SMS adapter")
    base.release("bump")

    result = base.release("diff", "1")

    assert result.out.splitlines()[:2] == [
        "release 1 → release 2 (working tree)",
        f"+ adapters/sms  (new) {added}",
    ]
    assert "contracts: 0 commit(s)" in result.out


def test_rollback_cuts_a_release_equal_to_an_earlier_one(base: Scripted) -> None:
    two_releases(base)
    first = manifests.parse(base.git("show", "release-1:release-manifest/manifest.yaml"))

    result = base.release("rollback", "1", "--notes", "Email breaks the pop-up")

    assert result.code == 0, result.err
    assert base.tags() == ["release-1", "release-2", "release-3"]
    third = manifests.parse(base.git("show", "release-3:release-manifest/manifest.yaml"))
    assert third.components == first.components
    assert (third.release, third.rollback_of) == (3, 1)
    assert third.notes == "Email breaks the pop-up"
    diff = base.release("diff", "2", "3").out
    assert "~ services/customer" in diff
    assert "(3 reverted)" in diff
    assert "      - " in diff


def test_rollback_leaves_out_components_added_since_and_says_so(base: Scripted) -> None:
    base.release("bump")
    base.release("cut", "--notes", "First")
    base.write("adapters/sms/__init__.py", "")
    base.commit("SMS adapter")
    base.release("bump")
    base.release("cut", "--notes", "SMS")

    result = base.release("rollback", "1")

    assert result.code == 0, result.err
    assert "not in this release (added after 1): adapters/sms" in result.out
    third = manifests.read(base.root)
    assert "adapters/sms" not in third.components
    assert third.notes == "Rollback to release 1"


def test_list_shows_every_release(base: Scripted) -> None:
    two_releases(base)
    base.release("rollback", "1")

    result = base.release("list")

    assert result.out.splitlines() == [
        "1: First — Rita Releaser <rita@example.com>, 4 components",
        "2: Email — Rita Releaser <rita@example.com>, 4 components",
        "3 (rollback to 1): Rollback to release 1 — Rita Releaser <rita@example.com>, 4 components",
    ]


def test_an_unknown_release_is_reported(base: Scripted) -> None:
    result = base.release("diff", "1", "9")

    assert result.code == 2
    assert "there is no release 1 (no tag release-1)" in result.err
