"""How robust is *your* torchvision model? White-box attacks on it, and attacks
transferred to it from another model, on your CIFAR-10 folder.

    python python/torchvision_model.py --data /data/cifar-10-batches-py \\
        --model torchvision:resnet18:my_resnet18.pth --source runs/table1/reference/model.ckpt

--model and --source take any model spec (orthocore.model_specs): an orthocore checkpoint,
a torch.export .pt2 file, torchvision:NAME:WEIGHTS or MODULE:FACTORY:WEIGHTS. A torchvision
model is built with CIFAR-10's 10 classes and takes pixels in [0, 1]: a model trained on
normalised images puts its normalisation in front in a factory of its own (MODULE:FACTORY).
"""

import argparse

from orthocore.attacks import PAPER_ATTACKS
from orthocore.data import open_dataset
from orthocore.evaluate import TransferConfig, default_eps_grid, transfer_evaluation
from orthocore.model_specs import open_model
from orthocore.settings import eps_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="CIFAR-10 python-batches folder")
    parser.add_argument("--model", required=True, help="your model, e.g. torchvision:resnet18:weights.pth")
    parser.add_argument("--source", help="a model the transferred attacks are crafted on (any model spec)")
    parser.add_argument("--attacks", default=",".join(PAPER_ATTACKS))
    parser.add_argument("--eps", type=eps_grid, default=default_eps_grid(), help="ε grid: a,b,c or start:stop:count")
    parser.add_argument("--n-images", type=int, default=1000)
    args = parser.parse_args()

    data = open_dataset(f"cifar10:{args.data}", "test")
    model = open_model(args.model, data=data, name="model")  # checked against the data: shape and classes
    config = TransferConfig(attacks=tuple(args.attacks.split(",")), eps=args.eps, n_images=args.n_images)
    print("white-box: attacks crafted on your model itself")
    print(transfer_evaluation(model, {}, data, config, source_name="model").format())
    if args.source:
        source = open_model(args.source, data=data, name="source")
        print("\ntransferred: crafted on the source, fooling your model")
        print(transfer_evaluation(source, {"model": model}, data, config, source_name="source").format())


if __name__ == "__main__":
    main()
