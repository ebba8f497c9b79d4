"""bump, check and cut on a scripted history."""

from __future__ import annotations

from troupe.release import manifest as manifests
from troupe.release.manifest import ComponentVersion, Manifest

from .release_history import Scripted


def read(repo: Scripted) -> Manifest:
    return manifests.read(repo.root)


def test_bump_pins_every_component_to_the_last_commit_of_its_folder(base: Scripted) -> None:
    result = base.release("bump")

    assert result.code == 0, result.err
    release = read(base)
    assert release.release == 1
    contracts = base.last_change("contracts")
    assert release.components == {
        name: ComponentVersion(version=base.last_change(name), contracts=contracts)
        for name in ("composer", "services/customer", "services/ticket", "sidecar")
    }
    assert f"+ services/ticket {base.last_change('services/ticket')}" in result.out


def test_bump_of_one_component_by_its_short_name(base: Scripted) -> None:
    base.release("bump")
    old = base.last_change("services/customer")
    base.write("services/customer/handlers.py", "# new handler\n")
    new = base.commit("Customer: new handler")
    base.write("services/ticket/handlers.py", "# not bumped\n")
    base.commit("Ticket: change")

    result = base.release("bump", "customer")

    assert f"~ services/customer {old} → {new}" in result.out
    components = read(base).components
    assert components["services/customer"].version == new
    assert components["services/ticket"].version != base.last_change("services/ticket")


def test_bump_warns_of_uncommitted_changes_and_drops_removed_components(base: Scripted) -> None:
    base.release("bump")
    base.git("rm", "-q", "-r", "sidecar")
    base.commit("Remove the sidecar")
    base.write("services/customer/wip.py", "# not committed\n")

    result = base.release("bump")

    assert "- sidecar (no longer in the tree)" in result.out
    assert "services/customer/ has uncommitted changes" in result.out
    assert "sidecar" not in read(base).components


def test_bump_of_an_unknown_component_fails_clearly(base: Scripted) -> None:
    result = base.release("bump", "billing")

    assert result.code == 2
    assert "no component 'billing'" in result.err


def test_check_passes_for_a_set_that_works_together(base: Scripted) -> None:
    base.release("bump")

    result = base.release("check")

    assert result.code == 0, result.err
    assert "release 1: 4 components work together" in result.out


def test_check_lists_every_problem_of_the_set(base: Scripted) -> None:
    base.release("bump")
    release = read(base)
    components = dict(release.components)
    contracts = base.last_change("contracts")
    del components["composer"]
    components["services/customer"] = ComponentVersion(version="deadbee", contracts=contracts)
    components["sidecar"] = ComponentVersion(version=contracts, contracts=contracts)
    manifests.write(base.root, release.model_copy(update={"components": components}))

    result = base.release("check")

    assert result.code == 1
    assert "cannot be cut: 3 problem(s)" in result.err
    assert "[unlisted] composer: is in the tree, not in the manifest" in result.err
    assert "[unknown-version] services/customer: deadbee is not a commit" in result.err
    assert f"[missing-folder] sidecar: sidecar/ does not exist at {contracts}" in result.err


def test_check_refuses_a_version_that_is_not_the_folders_or_wrong_contracts(
    base: Scripted,
) -> None:
    base.release("bump")
    release = read(base)
    later = base.last_change("composer")  # a commit that did not change services/ticket
    ticket = base.last_change("services/ticket")
    components = dict(release.components)
    components["services/ticket"] = ComponentVersion(version=later, contracts=ticket)
    manifests.write(base.root, release.model_copy(update={"components": components}))

    result = base.release("check")

    assert f"[not-a-version] services/ticket: commit {later} did not change" in result.err
    assert f"(its version there is {ticket})" in result.err
    assert f"[wrong-contracts] services/ticket: at {later} it is built against" in result.err


def test_cut_commits_only_the_manifest_and_tags_who_and_why(base: Scripted) -> None:
    base.release("bump")
    base.write("services/customer/wip.py", "# uncommitted work stays uncommitted\n")

    result = base.release("cut", "--notes", "First release", "--by", "Ann Ops <ann@example.com>")

    assert result.code == 0, result.err
    assert base.tags() == ["release-1"]
    assert "cut release-1" in result.out
    assert base.git("show", "--name-only", "--format=%s", "HEAD").split() == [
        "Release", "1:", "First", "release", "release-manifest/manifest.yaml"
    ]
    assert base.git("status", "--porcelain").strip() == "?? services/customer/wip.py"
    tag = base.git("tag", "-n20", "release-1")
    assert "Release 1: First release" in tag
    assert "Released-by: Ann Ops <ann@example.com>" in tag
    assert base.git("cat-file", "-t", "release-1").strip() == "tag"  # annotated
    released = manifests.parse(base.git("show", "release-1:release-manifest/manifest.yaml"))
    assert (released.release, released.notes) == (1, "First release")
    assert released.released_by == "Ann Ops <ann@example.com>"


def test_cut_records_the_git_user_when_nobody_is_named(base: Scripted) -> None:
    base.release("bump")

    base.release("cut", "--notes", "First")

    assert read(base).released_by == "Rita Releaser <rita@example.com>"


def test_the_next_bump_and_cut_make_release_two(base: Scripted) -> None:
    base.release("bump")
    base.release("cut", "--notes", "First")
    base.write("services/ticket/handlers.py", "# change\n")
    base.commit("Ticket: change")

    bumped = base.release("bump", "ticket")
    result = base.release("cut", "--notes", "Second")

    assert "release 2 prepared" in bumped.out
    assert result.code == 0, result.err
    assert base.tags() == ["release-1", "release-2"]
    assert read(base).release == 2


def test_cut_is_refused_with_every_reason_and_changes_nothing(base: Scripted) -> None:
    base.release("bump")
    release = read(base)
    components = dict(release.components)
    del components["composer"]
    del components["sidecar"]
    manifests.write(base.root, release.model_copy(update={"components": components}))
    head = base.git("rev-parse", "HEAD")

    result = base.release("cut", "--notes", "Incomplete")

    assert result.code == 1
    assert "release 1 refused:" in result.err
    assert "[unlisted] composer" in result.err
    assert "[unlisted] sidecar" in result.err
    assert base.tags() == []
    assert base.git("rev-parse", "HEAD") == head


def test_a_manifest_that_does_not_validate_is_reported(base: Scripted) -> None:
    base.write("release-manifest/manifest.yaml", "release: 1\ncomponents: {sidecar: 3}\n")

    result = base.release("check")

    assert result.code == 2
    assert "is not a valid manifest" in result.err
    assert "components → sidecar: Input should be a valid dictionary" in result.err


def test_a_declaration_file_that_does_not_validate_is_a_problem(base: Scripted) -> None:
    base.write(
        "services/ticket/events.yaml",
        "consumes:\n  - topic: customer.events\n    types: []\n    colour: red\n",
    )
    version = base.commit("Ticket: bad declarations")
    base.release("bump")

    result = base.release("check")

    assert result.code == 1
    assert f"[bad-declarations] services/ticket: services/ticket/events.yaml@{version}: " \
           "consumes.0.types: List should have at least 1 item after validation, not 0; " \
           "consumes.0.colour: Extra inputs are not permitted" in result.err
