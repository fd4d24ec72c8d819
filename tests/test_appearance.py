"""Palm and back must look different on rendered images, and the back of each fingertip must show a nail.

Measured on the synthetic MANO hands (right and left, 8 random subjects per Monk tone 2, 6 and 9, the lighting below):
the mean RGB colour of the hand's pixels seen palm-on and seen back-on differs by a Euclidean distance of 25-42 (light),
15-34 (medium) and 57-115 (dark), where the first renderer's flat per-vertex skin gave 1.2, 2.3 and 4.0; the palm's
red-minus-blue exceeds the back's by at least 10 levels; at least 148 nail pixels lie within 20 px of every tip in back
views, and palm views show at most 0.6 % as many. The margins below sit safely under those measurements.
"""
from dataclasses import replace

import numpy as np
import pytest

from gesthand.mano import load_mano_arrays
from gesthand.skeleton import TIP_VERTEX_IDS
from gesthand.render import (MONK_SKIN_TONES, Lighting, hand_surface, random_appearance, render, rest_hand_view,
                             skin_shading)

COLOUR_MARGIN = 12  # Euclidean distance of mean RGB (0-255), palm view against back view
REDDER_MARGIN = 5  # (R - B) of the palm view above that of the back view
NAIL_PIXELS_NEAR_TIP = 40  # nail pixels within NEAR_TIP_PX of each projected tip in a back view
NEAR_TIP_PX = 20
FOCAL, PRINCPT, SIZE = (1270.0, 1270.0), (167.0, 256.0), (334, 512)
LIGHTING = Lighting(directions=np.array([[-0.3, -0.4, -1.0], [0.5, 0.2, -0.6]]), intensities=np.array([0.8, 0.35]))
TONES = {'light': MONK_SKIN_TONES[1], 'medium': MONK_SKIN_TONES[5], 'dark': MONK_SKIN_TONES[8]}


@pytest.fixture(scope='module', params=['right', 'left'])
def hand(request):
    arrays = load_mano_arrays(request.param)
    return arrays, hand_surface(arrays)


def render_views(arrays, surface, appearance):
    "The rest hand rendered palm-on and back-on under the same lighting."
    skin = skin_shading(surface, arrays['f'], appearance)
    return [render(rest_hand_view(arrays, palm), arrays['f'], FOCAL, PRINCPT, SIZE, lighting=LIGHTING, skin=skin)
            for palm in (True, False)]


@pytest.mark.parametrize('tone', TONES)
def test_palm_and_back_differ_in_colour(hand, tone):
    arrays, surface = hand
    palm_view, back_view = render_views(arrays, surface, random_appearance(np.random.default_rng(0), TONES[tone]))
    palm, back = palm_view.image[palm_view.mask].mean(0), back_view.image[back_view.mask].mean(0)
    assert np.linalg.norm(palm - back) > COLOUR_MARGIN, (tone, palm, back)
    assert (palm[0] - palm[2]) - (back[0] - back[2]) > REDDER_MARGIN, (tone, palm, back)


@pytest.mark.parametrize('tone', TONES)
def test_nails_near_every_tip_on_the_back_only(hand, tone):
    arrays, surface = hand
    appearance = random_appearance(np.random.default_rng(0), TONES[tone])
    # nail pixels: where the image changes when the nails take the skin's colour and gloss
    bare = replace(appearance, nail_rgb=appearance.dorsal_rgb, nail_edge_rgb=appearance.dorsal_rgb, nail_gloss=1.0)
    with_nails, without = render_views(arrays, surface, appearance), render_views(arrays, surface, bare)
    palm_nails, back_nails = (np.any(a.image != b.image, axis=2) for a, b in zip(with_nails, without))
    tips = rest_hand_view(arrays, palm_to_camera=False)[list(TIP_VERTEX_IDS)]
    tips_px = tips[:, :2] / tips[:, 2:] * FOCAL + PRINCPT
    ys, xs = np.nonzero(back_nails)
    near = [int((np.hypot(xs - x, ys - y) < NEAR_TIP_PX).sum()) for x, y in tips_px]
    assert min(near) > NAIL_PIXELS_NEAR_TIP, (tone, near)
    assert palm_nails.sum() < 0.05 * back_nails.sum(), (tone, palm_nails.sum(), back_nails.sum())
