"""fo's committed AWS models (lua/fo/aws/models/<service>.json) as botocore service models,
so the oracle checks fo's codecs against botocore on the very model fo runs with, whatever
botocore version this interpreter has (Debian's python3-botocore is older than the models).

metadata.protocol is the protocol fo speaks (tools/gen_models.py picks it); protocols is
narrowed to it so that a botocore that chooses from that list (1.3x and later) picks the same.
The model files keep keys sorted; each structure's members go back into its memberOrder (the
model's order, which botocore serializes XML elements in).
"""
import json
import os

import botocore.model

MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "..", "..", "lua", "fo", "aws", "models")


def in_member_order(shapes):
    for shape in shapes.values():
        order = shape.get("memberOrder")
        if order:
            members = shape["members"]
            shape["members"] = {name: members[name] for name in order}
    return shapes


def load(service):
    with open(os.path.join(MODELS_DIR, service + ".json"), encoding="utf-8") as f:
        model = json.load(f)
    metadata = dict(model["metadata"])
    metadata["protocols"] = [metadata["protocol"]]
    shapes = in_member_order(model["shapes"])
    return botocore.model.ServiceModel(
        {"metadata": metadata, "operations": model["operations"], "shapes": shapes},
        service_name=service)
