"""Schemathesis against our OpenAPI schema with an authenticated client: no 500s.

Every operation in the schema gets generated requests (valid and invalid ids, query
parameters, bodies, multipart files) through Django's test client as a project member.
``FUZZ_EXAMPLES`` sets the number per operation (default 15; the README's slow run
uses 100).
"""

from __future__ import annotations

import os

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.test import APIClient

from tests import factories

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))


@pytest.fixture
def api_schema(db):
    from drf_spectacular.generators import SchemaGenerator

    document = SchemaGenerator().get_schema(request=None, public=True)
    return schemathesis.openapi.from_dict(document)


@pytest.fixture
def member_client(db):
    user = factories.user("fuzzer")
    project = factories.project("Fuzz", {user: "admin"})
    dataset = factories.dataset(project, "d")
    factories.asset(dataset, "seed.png")
    client = APIClient()
    client.force_authenticate(user)
    return client


def prepare(case) -> requests.PreparedRequest:
    """The exact bytes an HTTP client would send for a generated case (multipart too)."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    return requests.Request(
        method=kwargs["method"], url=kwargs["url"], params=kwargs.get("params"),
        headers=kwargs.get("headers"), json=kwargs.get("json"), data=kwargs.get("data"),
        files=kwargs.get("files"),
    ).prepare()


def call(client, case, prepared: requests.PreparedRequest | None = None):
    """Send a generated case through Django's test client (no network, no server)."""
    prepared = prepared if prepared is not None else prepare(case)
    path = prepared.path_url
    method = prepared.method.lower()
    content_type = prepared.headers.get("Content-Type", "application/octet-stream")
    if prepared.body is None:
        response = getattr(client, method)(path)
    else:
        response = getattr(client, method)(path, data=prepared.body, content_type=content_type)
    return method, path, response


def fuzz_operation(operation, client, failures: list, seen: list) -> None:
    label = (operation.method.upper(), operation.path)

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case):
        method, url, response = call(client, case)
        seen.append((*label, response.status_code))
        if response.status_code >= 500:
            failures.append((method, url, response.status_code))

    run()


def test_no_server_errors(api_schema, member_client):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    failures, seen = [], []
    for operation in operations:
        fuzz_operation(operation, member_client, failures, seen)
    assert failures == []
    if os.environ.get("FUZZ_REPORT"):
        from collections import Counter

        for key, count in sorted(Counter(seen).items()):
            print(*key, count)


def conformance_failures(operation, client, case_count: int,
                         mode: str = "positive") -> list[str]:
    """What a client generated from the schema would find unexpected in our answers: a
    status the operation does not document, a body that does not match its schema, a
    content type it does not declare."""
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    found: list[str] = []

    @given(case=operation.as_strategy(GenerationMode(mode)))
    @settings(max_examples=case_count, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case):
        prepared = prepare(case)
        _method, _path, response = call(client, case, prepared)
        content = b"".join(response.streaming_content) if response.streaming else \
            response.content
        answer = schemathesis.Response(
            status_code=response.status_code,
            headers={name: [value] for name, value in response.items()},
            content=content, request=prepared, elapsed=0.0, verify=False)
        try:
            case.validate_response(answer, checks=[status_code_conformance,
                                                   response_schema_conformance,
                                                   content_type_conformance])
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # schemathesis' FailureGroup: the problems it found
            problems = getattr(exc, "exceptions", [exc])
            for problem in problems:
                title = getattr(problem, "title", "") or str(problem).splitlines()[0]
                found.append(f"{operation.method.upper()} {operation.path} -> "
                             f"{response.status_code}: {title[:160]}")

    try:
        run()
    except Unsatisfiable:
        assert mode == "negative"  # nothing of this operation can be made invalid
    return found


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_answers_conform_to_the_schema(api_schema, member_client, mode):
    """Every status each operation answers is documented, with the body's shape, for
    valid requests and for requests the schema says are invalid alike."""
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    for operation in operations:
        failures.extend(conformance_failures(operation, member_client, EXAMPLES, mode))
    distinct = sorted(set(failures))
    assert distinct == [], "\n".join(distinct)


def test_lists_and_creates_link_to_their_detail_operation(api_schema):
    """A client generated from the schema can follow ids from a list to the detail."""
    from drf_spectacular.generators import SchemaGenerator

    document = SchemaGenerator().get_schema(request=None, public=True)
    operation_ids = {op["operationId"] for ops in document["paths"].values()
                     for op in ops.values() if isinstance(op, dict) and "operationId" in op}
    linked = {}
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            for code, response in op.get("responses", {}).items():
                for link in response.get("links", {}).values():
                    assert link["operationId"] in operation_ids
                    linked[(method, path, code)] = link
    for listing in ("/api/assets/", "/api/datasets/", "/api/projects/", "/api/notifications/",
                    "/api/saved-searches/"):
        assert ("get", listing, "200") in linked, sorted(linked)
    assert linked[("get", "/api/assets/", "200")]["parameters"] == {
        "id": "$response.body#/results/0/id"}
    assert ("post", "/api/datasets/", "201") in linked
    # every documented error answer says what its body holds
    for ops in document["paths"].values():
        for op in ops.values():
            for code, response in op.get("responses", {}).items():
                if code.startswith(("4", "5")):
                    assert response.get("description"), (op["operationId"], code)
