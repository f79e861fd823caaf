"""The ``frr`` driver's ``restore_config``: against the fake router of ``test_frr_driver``
(what is sent to frr-reload, on stdin and as arguments, and how a reload that fails or falls
short is reported), and the reload command itself in a real shell, with a stand-in
frr-reload that records how it was called."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from test_frr_driver import START, FakeRouter, device

from pitstop.domain.errors import DriverError, DriverTimeout
from pitstop.drivers.base import ConfigRestorer
from pitstop.drivers.frr import FrrDriver, FrrDriverFactory, restore
from pitstop.drivers.frr.transport import LocalTransport

NO: dict[str, object] = {}
PATHSPACE = "psl-lab-spine1"


@pytest.fixture
def router() -> FakeRouter:
    return FakeRouter()


def open_driver(router: FakeRouter, **options: str) -> FrrDriver:
    pathspace = options.get("pathspace")
    return FrrDriver(
        device(options),
        router,
        pathspace=pathspace,
        clock=lambda: START,
        sleep=router.sleep,
        monotonic=lambda: router.now,
    )


@pytest.fixture
def driver(router: FakeRouter) -> FrrDriver:
    return open_driver(router, pathspace=PATHSPACE)


def test_the_frr_driver_is_a_config_restorer(driver: FrrDriver) -> None:
    assert isinstance(driver, ConfigRestorer)


async def test_an_equal_config_changes_nothing_and_runs_no_reload(
    driver: FrrDriver, router: FakeRouter
) -> None:
    result = await driver.restore_config(await driver.backup_config())
    assert (result.changed, result.detail) == (False, "the running configuration already matches")
    assert router.reloads == []


async def test_the_config_goes_to_frr_reload_on_stdin_without_the_vtysh_header(
    driver: FrrDriver, router: FakeRouter
) -> None:
    before = await driver.backup_config()
    router.drift()
    result = await driver.restore_config(before)
    assert result.changed
    assert result.detail == "restored the configuration with frr-reload (1 line differed)"
    assert await driver.backup_config() == before
    [(_, stdin)] = router.reloads
    assert stdin is not None
    assert stdin == before.split("Current configuration:\n", 1)[1]
    assert stdin.startswith("!\nfrr version 8.4.4\n")


async def test_the_pathspace_and_the_configured_frr_reload_are_passed(router: FakeRouter) -> None:
    driver = open_driver(router, pathspace=PATHSPACE, frr_reload="/opt/frr/frr-reload.py")
    before = await driver.backup_config()
    router.drift()
    await driver.restore_config(before)
    [(argv, _)] = router.reloads
    command = argv[argv.index("python3") :]
    assert command[:2] == ["python3", "/opt/frr/frr-reload.py"]
    assert command[command.index("--pathspace") + 1] == PATHSPACE
    assert "--reload" in command


async def test_without_a_pathspace_none_is_passed_and_the_default_path_is_used(
    router: FakeRouter,
) -> None:
    driver = open_driver(router)
    before = await driver.backup_config()
    router.drift()
    await driver.restore_config(before)
    [(argv, _)] = router.reloads
    assert "--pathspace" not in argv and "-N" not in argv
    assert restore.DEFAULT_FRR_RELOAD == "/usr/lib/frr/frr-reload.py"
    assert argv[argv.index("python3") + 1] == restore.DEFAULT_FRR_RELOAD


async def test_a_reload_that_leaves_a_difference_is_a_driver_error_after_a_second_pass(
    driver: FrrDriver, router: FakeRouter
) -> None:
    before = await driver.backup_config()
    router.drift(7)
    router.reloaded = [router.config, router.config]  # the drift survives every reload
    with pytest.raises(DriverError) as err:
        await driver.restore_config(before)
    message = str(err.value)
    assert "spine1: after frr-reload the running configuration still differs" in message
    assert "1 line not asked for ('ip prefix-list psl-drift-7 seq 5" in message
    assert len(router.reloads) == restore.MAX_PASSES == 2


async def test_a_second_pass_that_removes_the_difference_succeeds(
    driver: FrrDriver, router: FakeRouter
) -> None:
    before = await driver.backup_config()
    router.drift(7)
    router.reloaded = [router.config]  # only the first pass leaves the drift behind
    result = await driver.restore_config(before)
    assert result.detail.startswith("restored the configuration with frr-reload in 2 passes")
    assert await driver.backup_config() == before


async def test_a_difference_only_in_order_is_an_error_without_a_useless_second_pass(
    driver: FrrDriver, router: FakeRouter
) -> None:
    one = router.drift(1)
    router.drift(2)
    wanted = await driver.backup_config()
    router.config = wanted.replace(f"{one}\n!\n", "")  # someone deleted psl-drift-1
    # frr-reload adds it back, and FRR lists it last, after psl-drift-2.
    router.reloaded = [router.config.replace("end\n", f"{one}\n!\nend\n")]
    with pytest.raises(DriverError, match="only the order of its lines differs"):
        await driver.restore_config(wanted)
    assert len(router.reloads) == 1


async def test_a_failing_frr_reload_is_a_driver_error_naming_the_device(
    driver: FrrDriver, router: FakeRouter
) -> None:
    before = await driver.backup_config()
    router.drift()
    router.reload_fails = (
        "2026-12-01 11:40:05,126 \x1b[91m  ERROR\x1b[0m: vtysh failed to process new "
        "configuration: line 2: % Unknown command: ip prefix-list bad"
    )
    with pytest.raises(DriverError) as err:
        await driver.restore_config(before)
    assert str(err.value) == (
        "DRIVER_ERROR: spine1: frr-reload (/usr/lib/frr/frr-reload.py, fake) did not apply "
        "the configuration: ERROR: vtysh failed to process new configuration: line 2: "
        "% Unknown command: ip prefix-list bad"
    )


async def test_a_reload_without_an_answer_is_a_timeout_naming_the_device(
    driver: FrrDriver, router: FakeRouter
) -> None:
    before = await driver.backup_config()
    router.drift()

    async def hangs(argv: list[str], **_: object) -> str:
        if "frr-reload" in argv:
            raise DriverTimeout("fake: sh -c ...: no answer after 120 s")
        return await FakeRouter.run(router, argv)

    router.run = hangs  # type: ignore[method-assign]
    with pytest.raises(DriverTimeout, match="spine1: frr-reload \\(fake\\) gave no answer"):
        await driver.restore_config(before)


async def test_an_empty_config_is_refused_before_anything_runs(
    driver: FrrDriver, router: FakeRouter
) -> None:
    with pytest.raises(DriverError, match="spine1: no configuration to restore"):
        await driver.restore_config("Building configuration...\n\nCurrent configuration:\n")
    assert router.sent == []


async def test_restoring_the_diverted_config_keeps_the_diversion_and_its_backup(
    driver: FrrDriver, router: FakeRouter
) -> None:
    before = await driver.backup_config()
    await driver.apply_maintenance(method=None, options=NO)
    diverted = await driver.backup_config()
    router.drift()
    assert (await driver.restore_config(diverted)).changed
    assert " bgp graceful-shutdown\n" in router.config
    removed = await driver.remove_maintenance(method=None, options=NO)
    assert removed.changed and "equals the backup" in removed.detail
    assert await driver.backup_config() == before


async def test_restoring_the_undiverted_config_ends_the_diversion(
    driver: FrrDriver, router: FakeRouter
) -> None:
    before = await driver.backup_config()
    await driver.apply_maintenance(method="max-med", options=NO)
    assert (await driver.restore_config(before)).changed
    assert await driver.backup_config() == before
    assert (await driver.remove_maintenance(method=None, options=NO)).changed is False
    again = await driver.apply_maintenance(method=None, options=NO)  # a fresh backup
    assert again.changed
    await driver.remove_maintenance(method=None, options=NO)
    assert await driver.backup_config() == before


def test_the_factory_refuses_a_relative_frr_reload_path() -> None:
    with pytest.raises(
        DriverError, match=r"options\.frr_reload 'frr-reload\.py' is not an absolute"
    ):
        FrrDriverFactory().open(device({"frr_reload": "frr-reload.py"}))


def test_the_vtysh_header_is_not_part_of_the_config_body() -> None:
    text = "Building configuration...\n\nCurrent configuration:\n!\nhostname r1\n!\nend\n"
    assert restore.config_body(text) == "!\nhostname r1\n!\nend\n"
    assert restore.config_body("!\nhostname r1\n") == "!\nhostname r1\n"


# --- the reload command in a real shell -----------------------------------------------------

STAND_IN = """\
import json, os, sys
args = sys.argv[1:]
opt = lambda name: args[args.index(name) + 1] if name in args else None
confdir, filename, pathspace = opt("--confdir"), args[-1], opt("--pathspace")
vtysh_conf = os.path.join(confdir, pathspace or "", "vtysh.conf")
json.dump({
    "args": args,
    # frr-reload saves the running config (vtysh "write") unless it reloads <confdir>/frr.conf
    "would_write": filename != confdir + "/frr.conf",
    "rundir_is_confdir": opt("--rundir") == confdir,
    "vtysh_conf": os.path.isfile(vtysh_conf),
    "config": open(filename).read(),
}, open(os.environ["RECORD"], "w"))
sys.exit(int(os.environ.get("EXIT", "0")))
"""


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "frr-reload.py"
    script.write_text(STAND_IN)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setenv("RECORD", str(tmp_path / "record.json"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return script


@pytest.mark.parametrize("pathspace", [PATHSPACE, None])
async def test_the_reload_command_writes_the_config_where_nothing_is_saved(
    stand_in: Path, tmp_path: Path, pathspace: str | None
) -> None:
    config = "!\nhostname r1\nip prefix-list x seq 5 permit 10.0.0.0/8\n!\nend\n"
    argv = restore.reload_argv(str(stand_in), pathspace)
    assert await LocalTransport().run(argv, input=config) == ""
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["config"] == config
    assert record["would_write"] is False
    assert record["rundir_is_confdir"] and record["vtysh_conf"]
    assert record["args"][:2] == ["--reload", "--stdout"]
    assert ("--pathspace" in record["args"]) is (pathspace is not None)
    assert list((tmp_path / "tmp").iterdir()) == []  # the temporary directory is gone


async def test_the_reload_command_fails_with_frr_reload(
    stand_in: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXIT", "1")
    with pytest.raises(DriverError):
        await LocalTransport().run(restore.reload_argv(str(stand_in), None), input="!\nend\n")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_difference_names_the_lines_missing_and_those_not_asked_for() -> None:
    want = "!\nhostname r1\nip prefix-list a seq 5 permit 10.0.0.0/8\n!\nend\n"
    got = "!\nhostname r1\n!\nip prefix-list b seq 5 permit 10.1.0.0/16\n!\nend\n"
    assert restore.difference(want, got) == (
        "1 line missing ('ip prefix-list a seq 5 permit 10.0.0.0/8'), "
        "1 line not asked for ('ip prefix-list b seq 5 permit 10.1.0.0/16')"
    )


async def test_only_the_frr_version_line_differing_needs_no_reload(
    driver: FrrDriver, router: FakeRouter
) -> None:
    """An upgrade changes the version FRR writes at the top; no reload can set it back, and
    a revert after an upgrade must not fail for it."""
    before = await driver.backup_config()
    older = before.replace("frr version 8.4.4", "frr version 8.1")
    assert older != before
    result = await driver.restore_config(older)
    assert (result.changed, result.detail) == (False, "the running configuration already matches")
    assert router.reloads == []


def test_comparable_drops_the_header_and_the_version_line() -> None:
    text = "Building configuration...\n\nCurrent configuration:\n!\nfrr version 9.0\nhostname r1\n"
    assert restore.comparable(text) == "!\nhostname r1\n"
