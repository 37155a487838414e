"""operations/workspaces.py: installations (a workspace's own, an organization's org-wide one),
what a job of a workspace finds, settings and their defaults, the states of "Add to Slack"."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from core.errors import InvalidInput, NotAllowed
from operations.auth import Actor, Role
from operations.workspaces import (
    InstalledBot,
    WorkspaceSettings,
    bot_for_team,
    consume_install_state,
    find_installation,
    grant_team_access,
    issue_install_state,
    note_workspace,
    record_installation,
    revoke_team_access,
    save_workspace_settings,
    uninstall,
    workspace_settings,
)
from storage.models import AuditEvent, InstallState


def bot(team_id, token, *, enterprise_id=None, org_wide=False) -> InstalledBot:
    return InstalledBot(
        app_id="A1",
        enterprise_id=enterprise_id,
        team_id=None if org_wide else team_id,
        bot_token=token,
        bot_user_id="UBOT",
        installed_by="UINSTALLER",
        is_enterprise_install=org_wide,
    )


def actions(ctx) -> list[tuple[str, str]]:
    with ctx.db.begin() as session:
        return session.execute(select(AuditEvent.team_id, AuditEvent.action).order_by(AuditEvent.id)).all()


def test_an_org_wide_install_serves_the_workspaces_of_its_organization_that_have_none_of_their_own(ctx):
    record_installation(ctx, bot(None, "xoxb-org", enterprise_id="E1", org_wide=True))
    record_installation(ctx, bot("T2", "xoxb-t2", enterprise_id="E1"))
    assert bot_for_team(ctx, "T1") is None  # not seen yet: its organization is not known
    assert note_workspace(ctx, "T1", "E1", reinstall=False)  # its first request names it
    assert bot_for_team(ctx, "T1").bot_token == "xoxb-org"
    assert bot_for_team(ctx, "T2").bot_token == "xoxb-t2"  # its own install wins
    found = find_installation(ctx, enterprise_id="E1", team_id="T1", is_enterprise_install=True)
    assert (found.bot_token, found.is_enterprise_install, found.team_id) == ("xoxb-org", True, None)
    assert find_installation(ctx, enterprise_id=None, team_id="T2").bot_token == "xoxb-t2"  # organization unsaid
    assert "xoxb" not in repr(found)

    assert uninstall(ctx, team_id=None, enterprise_id="E1", is_enterprise_install=True, reason="app_uninstalled") == [
        "T1"
    ]
    assert bot_for_team(ctx, "T1") is None and bot_for_team(ctx, "T2").bot_token == "xoxb-t2"
    assert ("E1", "organization.installed") in actions(ctx) and ("T1", "workspace.uninstalled") in actions(ctx)

    record_installation(ctx, bot(None, "xoxb-org-2", enterprise_id="E1", org_wide=True))  # installed again
    assert bot_for_team(ctx, "T1").bot_token == "xoxb-org-2"
    assert ("T1", "workspace.reinstalled") in actions(ctx)


def test_an_org_admin_removing_and_adding_workspaces_of_the_org_wide_app_uninstalls_and_installs_them(ctx):
    record_installation(ctx, bot(None, "xoxb-org", enterprise_id="E1", org_wide=True))
    record_installation(ctx, bot("T2", "xoxb-t2", enterprise_id="E1"))
    for team in ("T1", "T3"):
        note_workspace(ctx, team, "E1", reinstall=False)
    assert revoke_team_access(ctx, "E1", ["T1", "T2", "T9"]) == ["T1"]  # T2 keeps its own install; T9 unknown
    assert revoke_team_access(ctx, "E1", ["T1"]) == []  # the event again
    assert bot_for_team(ctx, "T1") is None
    assert bot_for_team(ctx, "T2").bot_token == "xoxb-t2" and bot_for_team(ctx, "T3").bot_token == "xoxb-org"
    assert revoke_team_access(ctx, "E2", ["T3"]) == []  # another organization's admin cannot reach it

    record_installation(ctx, bot(None, "xoxb-org-2", enterprise_id="E1", org_wide=True))  # the org's app reinstalled
    assert bot_for_team(ctx, "T1") is None  # still removed by its admin
    assert grant_team_access(ctx, "E1", ["T1", "T4", "T3"]) == ["T1", "T4"]  # T3 was installed already
    assert bot_for_team(ctx, "T1").bot_token == "xoxb-org-2" and bot_for_team(ctx, "T4").bot_token == "xoxb-org-2"
    assert ("T1", "workspace.reinstalled") in actions(ctx) and ("T4", "workspace.installed") in actions(ctx)
    assert [a for t, a in actions(ctx) if t == "T1"].count("workspace.uninstalled") == 1


def test_access_granted_without_the_org_wide_install_installs_nothing(ctx):
    assert grant_team_access(ctx, "E1", ["T1"]) == []
    assert bot_for_team(ctx, "T1") is None and actions(ctx) == []


def test_an_org_wide_install_that_names_no_organization_is_refused_before_anything_is_stored(ctx):
    nameless = replace(bot("T1", "xoxb-org", org_wide=True), team_id="T1")
    with pytest.raises(ValueError, match="organization"):
        record_installation(ctx, nameless)
    assert find_installation(ctx, enterprise_id=None, team_id="T1") is None and actions(ctx) == []


def test_an_uninstall_is_recorded_once_and_a_reinstall_replaces_the_token(ctx):
    record_installation(ctx, bot("T1", "xoxb-1"))
    assert uninstall(ctx, team_id="T1", enterprise_id=None, is_enterprise_install=False, reason="tokens_revoked")
    assert not uninstall(ctx, team_id="T1", enterprise_id=None, is_enterprise_install=False, reason="app_uninstalled")
    assert bot_for_team(ctx, "T1") is None
    record_installation(ctx, bot("T1", "xoxb-2"))
    assert bot_for_team(ctx, "T1").bot_token == "xoxb-2"
    assert [a for t, a in actions(ctx)] == ["workspace.installed", "workspace.uninstalled", "workspace.reinstalled"]


def test_with_one_token_a_person_acting_after_an_uninstall_installs_the_workspace_again_an_event_does_not(ctx):
    assert note_workspace(ctx, "T1", None, reinstall=True)
    uninstall(ctx, team_id="T1", enterprise_id=None, is_enterprise_install=False, reason="app_uninstalled")
    assert not note_workspace(ctx, "T1", None, reinstall=False)  # a late retry of an event
    assert note_workspace(ctx, "T1", None, reinstall=True)
    assert [a for t, a in actions(ctx)] == ["workspace.uninstalled", "workspace.reinstalled"]


def test_the_environment_gives_the_settings_until_the_admins_save_theirs(ctx):
    ctx.settings = replace(ctx.settings, alert_channel="C0ENV", admins=("U0ENV",))
    assert workspace_settings(ctx, "T1") == WorkspaceSettings(alert_channel="C0ENV", admins=("U0ENV",))
    admin = Actor("T1", "UADA", Role.ADMIN)
    saved = save_workspace_settings(ctx, admin, WorkspaceSettings(escalation_channel="G0PRIVATE", operators=("S0OPS",)))
    now = workspace_settings(ctx, "T1")
    # Saved: the workspace's own, even where it chose nothing (no admins: the workspace's admins and owners).
    assert (now.alert_channel, now.escalation_channel, now.admins, now.operators) == (None, "G0PRIVATE", (), ("S0OPS",))
    assert now == saved and now.saved_by == "UADA"
    assert workspace_settings(ctx, "T2").alert_channel == "C0ENV"  # another workspace's are its own


@pytest.mark.parametrize(
    "chosen, field",
    [
        (WorkspaceSettings(alert_channel="D0DIRECT"), "alert_channel"),
        (WorkspaceSettings(escalation_channel="#escalations"), "escalation_channel"),
        (WorkspaceSettings(csm_group="U0PERSON"), "csm_group"),
        (WorkspaceSettings(admins=("UADA", "<!channel>")), "admins"),
        (WorkspaceSettings(operators=tuple(f"U{i:04}" for i in range(101))), "operators"),
    ],
)
def test_settings_that_are_not_slack_ids_are_refused_and_change_nothing(ctx, chosen, field):
    with pytest.raises(InvalidInput) as refused:
        save_workspace_settings(ctx, Actor("T1", "UADA", Role.ADMIN), chosen)
    assert list(refused.value.fields) == [field]
    assert workspace_settings(ctx, "T1").saved_at is None


def test_only_admins_save_settings(ctx):
    with pytest.raises(NotAllowed, match="admin role to change the workspace settings"):
        save_workspace_settings(ctx, Actor("T1", "UOPS", Role.OPERATOR), WorkspaceSettings(admins=("UOPS",)))
    assert workspace_settings(ctx, "T1").saved_at is None


def test_an_install_state_is_used_once_within_ten_minutes_and_only_its_hash_is_kept(ctx, clock):
    state = issue_install_state(ctx)
    with ctx.db.begin() as session:
        assert state not in repr(session.scalars(select(InstallState)).all()[0].__dict__)
    assert not consume_install_state(ctx, "forged")
    assert consume_install_state(ctx, state)
    assert not consume_install_state(ctx, state)  # a replay
    late = issue_install_state(ctx)
    clock.advance(minutes=10, seconds=1)
    assert not consume_install_state(ctx, late)
    issue_install_state(ctx)
    clock.advance(minutes=25)
    issue_install_state(ctx)  # long-expired states are deleted on the way
    with ctx.db.begin() as session:
        assert len(session.scalars(select(InstallState)).all()) == 1


def test_the_purge_deletes_every_row_of_the_workspace_but_its_audit_trail(ctx, clock):
    from datetime import timedelta

    from engine.account_sync import sync_accounts
    from operations.connections import make_connection
    from operations.workspaces import purge_uninstalled
    from storage.models import Alert, ConnectionCatalog, Escalation, JobClaim, OrderState
    from support import demo_order

    def everything(team: str) -> dict[str, int]:
        """A connection with a row in every table that belongs to it."""
        made = {}
        cid = make_connection(ctx, Actor(team, "UADA", Role.ADMIN), "demo", {"token": "demo:accounts=3"})
        sync_accounts(ctx, team, cid, trigger="connect")
        oid = demo_order(ctx, team, cid)
        now = clock.now()
        with ctx.db.begin() as session:
            session.add(ConnectionCatalog(connection_id=cid, catalog={}, discovered_at=now))
            session.add(OrderState(order_id=oid, state=[], saved_at=now))
            session.add(Alert(team_id=team, connection_id=cid, opened_at=now))
            session.add(Escalation(team_id=team, connection_id=cid, channel="C1", created_by="UADA", created_at=now))
            session.add(JobClaim(job_key=f"sync:{cid}", scheduled_for=now, claimed_by="test", claimed_at=now))
        made["connection"], made["order"] = cid, oid
        return made

    def rows(connection_id: int) -> list[str]:
        """The tables with a row of the connection (the audit trail aside)."""
        from storage.models import Base

        with ctx.db.engine.connect() as conn:
            return [
                table.name
                for table in Base.metadata.sorted_tables
                if "connection_id" in table.c
                and table.name != "audit_events"
                and conn.execute(select(table).where(table.c.connection_id == connection_id)).first()
            ]

    kept, gone = everything("T1"), everything("T2")
    note_workspace(ctx, "T2", None, reinstall=True)
    save_workspace_settings(ctx, Actor("T2", "UADA", Role.ADMIN), WorkspaceSettings(alert_channel="C0ALERT"))
    uninstall(ctx, team_id="T2", enterprise_id=None, is_enterprise_install=False, reason="app_uninstalled")
    assert purge_uninstalled(ctx, clock.now() + timedelta(days=29)) == []
    assert purge_uninstalled(ctx, clock.now() + timedelta(days=30)) == ["T2"]
    assert rows(gone["connection"]) == [] and rows(kept["connection"]) != []
    with ctx.db.begin() as session:
        assert session.scalars(select(JobClaim.job_key)).all() == [f"sync:{kept['connection']}"]
        assert session.scalars(select(OrderState.order_id)).all() == [kept["order"]]
    assert workspace_settings(ctx, "T2").saved_at is None  # its settings went with it
    assert [a for t, a in actions(ctx) if t == "T2"][-2:] == ["workspace.uninstalled", "workspace.purged"]


# ---- token rotation -----------------------------------------------------------------------------


def rotating_install(ctx, clock, *, hours: float) -> InstalledBot:
    """An install of token rotation (token xoxe.xoxb-first, refresh token xoxe-1-first) whose
    token expires in `hours`."""
    from datetime import timedelta

    expiring = replace(
        bot("T1", "xoxe.xoxb-first"),
        bot_refresh_token="xoxe-1-first",
        bot_token_expires_at=clock.now() + timedelta(hours=hours),
    )
    return record_installation(ctx, expiring)


def test_a_rotating_token_is_renewed_once_it_has_less_than_two_hours_left_and_kept_encrypted(ctx, clock):
    from datetime import timedelta

    from operations.workspaces import RenewedToken, with_fresh_token
    from support import assert_not_stored

    asked = []

    def renew(refresh_token: str) -> RenewedToken:
        asked.append(refresh_token)
        return RenewedToken(bot_token="xoxe.xoxb-second", refresh_token="xoxe-1-second", expires_in=43200)

    installed = rotating_install(ctx, clock, hours=12)
    for secret in ("xoxe.xoxb-first", "xoxe-1-first"):
        assert_not_stored(ctx, secret)
        assert secret not in repr(installed)
    clock.advance(hours=9, minutes=59)
    assert with_fresh_token(ctx, bot_for_team(ctx, "T1"), renew).bot_token == "xoxe.xoxb-first" and asked == []
    clock.advance(minutes=2)
    renewed = with_fresh_token(ctx, bot_for_team(ctx, "T1"), renew)
    assert (renewed.bot_token, asked) == ("xoxe.xoxb-second", ["xoxe-1-first"])
    assert renewed.bot_token_expires_at == clock.now() + timedelta(hours=12)
    assert bot_for_team(ctx, "T1").bot_refresh_token == "xoxe-1-second"
    assert with_fresh_token(ctx, bot_for_team(ctx, "T1"), renew).bot_token == "xoxe.xoxb-second" and len(asked) == 1
    for secret in ("xoxe.xoxb-second", "xoxe-1-second"):
        assert_not_stored(ctx, secret)
    plain = record_installation(ctx, bot("T2", "xoxb-forever"))  # rotation off: nothing to renew, ever
    clock.advance(days=400)
    assert with_fresh_token(ctx, plain, renew) is plain and len(asked) == 1


def test_a_renewal_slack_refuses_keeps_the_token_while_it_lasts_then_says_to_reinstall(ctx, clock, caplog):

    from core.errors import NotInstalled
    from operations.workspaces import TokenNotRenewed, with_fresh_token

    rotating_install(ctx, clock, hours=1)
    asked = []

    def refuse(refresh_token: str):
        asked.append(refresh_token)
        raise TokenNotRenewed("invalid_refresh_token")

    assert with_fresh_token(ctx, bot_for_team(ctx, "T1"), refuse).bot_token == "xoxe.xoxb-first"
    assert "Slack did not renew the bot token of T:T1 (invalid_refresh_token)" in caplog.text
    clock.advance(minutes=4)  # not asked again on every use meanwhile
    assert with_fresh_token(ctx, bot_for_team(ctx, "T1"), refuse).bot_token == "xoxe.xoxb-first" and len(asked) == 1
    clock.advance(minutes=2)
    assert with_fresh_token(ctx, bot_for_team(ctx, "T1"), refuse).bot_token == "xoxe.xoxb-first" and len(asked) == 2
    clock.advance(hours=1)
    with pytest.raises(NotInstalled, match="installs connbot again from the install page"):
        with_fresh_token(ctx, bot_for_team(ctx, "T1"), refuse)
    with pytest.raises(NotInstalled):  # within the retry delay: the same answer, Slack not asked
        with_fresh_token(ctx, bot_for_team(ctx, "T1"), refuse)
    assert len(asked) == 3 and "xoxe" not in caplog.text


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite has no row lock
def test_a_process_waiting_for_the_lock_takes_the_token_another_one_renewed(ctx, clock):
    """Each refresh token works once: of two processes, the one that waited for the row lock must
    not renew again with the used one, but read what the other stored."""
    import threading
    from datetime import timedelta

    from sqlalchemy import text

    from operations.workspaces import RenewedToken, with_fresh_token
    from storage.models import Installation

    rotating_install(ctx, clock, hours=1)
    asked = []

    def renew(refresh_token: str) -> RenewedToken:
        asked.append(refresh_token)
        return RenewedToken(bot_token="xoxe.xoxb-mine", refresh_token="xoxe-1-mine", expires_in=43200)

    found = bot_for_team(ctx, "T1")
    result = {}
    with ctx.db.engine.connect() as other:  # the other process: holds the row while it renews
        other.execute(text("BEGIN"))
        other.execute(text("SELECT id FROM installations FOR UPDATE"))
        waiting = threading.Thread(target=lambda: result.update(bot=with_fresh_token(ctx, found, renew)))
        waiting.start()
        with ctx.db.engine.connect() as watcher:  # until it waits for the row
            for _ in range(200):
                waits = watcher.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                )
                watcher.rollback()  # PostgreSQL reads pg_stat_activity once per transaction
                if waits:
                    break
                waiting.join(0.05)
        assert waits and waiting.is_alive(), waits
        other.execute(
            Installation.__table__.update().values(
                bot_token=ctx.vault.encrypt_token("xoxe.xoxb-theirs"),
                bot_refresh_token=ctx.vault.encrypt_token("xoxe-1-theirs"),
                bot_token_expires_at=clock.now() + timedelta(hours=12),
            )
        )
        other.execute(text("COMMIT"))
    waiting.join(10)
    assert result["bot"].bot_token == "xoxe.xoxb-theirs" and asked == []
