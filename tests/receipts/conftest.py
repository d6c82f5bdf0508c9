"""Fixtures for receipt tests: session-wide keys, the accepted trust list, a valid QR text."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.domain import receipts
from kiosk.domain.trustlist import TrustList
from tests.receipts.support import HOST, listing, load_maker, make_receipt


@pytest.fixture(scope="session")
def centre_key() -> ec.EllipticCurvePrivateKey:
    """The centre's signing key."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def other_key() -> ec.EllipticCurvePrivateKey:
    """A key nobody enrolled."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def root_key() -> ec.EllipticCurvePrivateKey:
    """Central's root key."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def trust_list(centre_key) -> TrustList:
    """The accepted trust list."""
    return listing(centre_key)


@pytest.fixture(scope="session")
def valid_text(centre_key) -> str:
    """QR text of the sample receipt."""
    return receipts.issue(make_receipt(), centre_key, HOST)


@pytest.fixture(scope="session")
def maker():
    """The vector generator module."""
    return load_maker()
