import os

os.environ.setdefault('HF_HUB_OFFLINE', '1')

import pytest


@pytest.fixture(scope='session')
def tiny_root():
    "The cached tiny synthetic InterHand2.6M dataset (generated on first use)"
    from gesthand.synth import synthetic_interhand_root
    return synthetic_interhand_root('tiny')
