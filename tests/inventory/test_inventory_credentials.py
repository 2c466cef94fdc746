"""Credentials: where they come from, and that a password is never shown, logged or written."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import textwrap

import pytest

from agent.errors import CredentialError
from agent.inventory import Inventory, parse_inventory
from agent.model.credential import Credential, CredentialSource, Secret

PASSWORD = "Pa$$w0rd-'\"`$(x)-名前"


def inventory(text: str) -> Inventory:
    return parse_inventory(textwrap.dedent(text), "inv.yaml")


def test_plain_ansible_password_stays_out_of_the_target() -> None:
    inv = inventory(f"""
        all:
          vars:
            ansible_user: CONTOSO\\svc
            ansible_password: {json.dumps(PASSWORD)}
            ansible_psrp_auth: ntlm
          hosts:
            ex01.contoso.local:
    """)
    (target,) = inv.hosts
    assert target.credential.source is CredentialSource.INVENTORY
    for shown in (repr(target), str(target), json.dumps(target.to_dict()), repr(inv), str(inv)):
        assert PASSWORD not in shown
    credential = inv.credentials().resolve(target)
    assert credential.password is not None and credential.password.reveal() == PASSWORD
    assert credential.username == "CONTOSO\\svc"


def test_environment_variable() -> None:
    inv = inventory("""
        all:
          vars: {ansible_user: svc, exfix_password_env: EXFIX_TEST_PASSWORD, ansible_psrp_auth: ntlm}
          hosts:
            ex01.contoso.local:
    """)
    (target,) = inv.hosts
    assert target.credential.env_var == "EXFIX_TEST_PASSWORD"
    credential = inv.credentials(environ={"EXFIX_TEST_PASSWORD": PASSWORD}).resolve(target)
    assert credential.source is CredentialSource.ENV and credential.password == Secret(PASSWORD)
    with pytest.raises(CredentialError) as caught:
        inv.credentials(environ={}).resolve(target)
    assert "EXFIX_TEST_PASSWORD" in str(caught.value) and "ex01.contoso.local" in str(caught.value)
    with pytest.raises(CredentialError):
        inv.credentials(environ={"EXFIX_TEST_PASSWORD": ""}).resolve(target)


def test_environment_variable_beats_inline_password() -> None:
    inv = inventory("""
        all:
          vars: {ansible_password: inline, exfix_password_env: EXFIX_TEST_PASSWORD, ansible_psrp_auth: ntlm}
          hosts:
            ex01.contoso.local:
    """)
    credential = inv.credentials(environ={"EXFIX_TEST_PASSWORD": "from-env"}).resolve(inv.hosts[0])
    assert credential.password == Secret("from-env")


def test_kerberos_cache_means_no_password() -> None:
    inv = inventory("""
        all:
          hosts:
            ex01.contoso.local: {ansible_user: svc@CONTOSO.LOCAL}
    """)
    credential = inv.credentials(environ={}).resolve(inv.hosts[0])
    assert credential.source is CredentialSource.KERBEROS_CACHE and credential.password is None
    assert credential.username == "svc@CONTOSO.LOCAL"


def test_ask_pass_prompts_once_per_user() -> None:
    inv = inventory("""
        all:
          vars: {ansible_psrp_auth: ntlm, exfix_exchange_auth: ntlm}
          children:
            a:
              vars: {ansible_user: alice}
              hosts: {ex01.contoso.local: , ex02.contoso.local: }
            b:
              vars: {ansible_user: bob}
              hosts: {ex03.contoso.local: }
    """)
    asked: list[tuple[str | None, str]] = []

    def prompt(user: str | None, host: str) -> str:
        asked.append((user, host))
        return f"pw-{user}"

    resolver = inv.credentials(prompt=prompt)
    passwords = [resolver.resolve(t).password for t in inv.hosts]
    assert passwords == [Secret("pw-alice"), Secret("pw-alice"), Secret("pw-bob")]
    assert asked == [("alice", "ex01.contoso.local"), ("bob", "ex03.contoso.local")]
    assert "pw-" not in repr(resolver)


def test_ntlm_without_any_password_says_what_to_do() -> None:
    inv = inventory("""
        all:
          vars: {ansible_psrp_auth: ntlm, ansible_user: svc}
          hosts:
            ex01.contoso.local:
    """)
    assert inv.hosts[0].credential.source is CredentialSource.PROMPT
    with pytest.raises(CredentialError, match="--ask-pass"):
        inv.credentials(environ={}).resolve(inv.hosts[0])


def test_secret_and_credential_never_show_the_password(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret(PASSWORD)
    credential = Credential(CredentialSource.ENV, "svc", secret)
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("exfix.test")
    log.info("secret %s %r %s", secret, secret, credential)
    log.info(f"credential {credential} {credential!r} {secret:>20}")
    shown = [repr(secret), str(secret), f"{secret}", repr(credential), str(credential), caplog.text]
    assert all(PASSWORD not in text for text in shown)
    assert "********" in repr(credential)
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        pickle.dumps(credential)
    with pytest.raises(TypeError):
        copy.deepcopy(secret)
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")
