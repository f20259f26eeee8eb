"""Table I of the paper on your CIFAR-10 folder: a reference model, an ordinary retrain
and an orthogonal model (Algorithm 1), their accuracy and the similarity δ of their
input gradients to the reference.

    python python/cifar10_table1.py --data /data/cifar-10-batches-py --arch vgg11 --out runs/table1

Checkpoints land in OUT/{reference,ordinary,orthogonal}/model.ckpt for the other examples.
"""

import argparse
from pathlib import Path

import torch

from orthocore import gradients, models
from orthocore.checkpoint import load_model
from orthocore.data import open_dataset
from orthocore.train import TrainConfig, accuracy, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="CIFAR-10 python-batches folder")
    parser.add_argument("--arch", default="vgg11", choices=models.available())
    parser.add_argument("--out", default="runs/table1")
    parser.add_argument("--lambda", dest="lam", type=float, default=30.0, help="λ of the orthogonal model (paper: 30)")
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=20, help="Algorithm 1's validation interval")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    data = f"cifar10:{args.data}"
    common = dict(arch=args.arch, data=data, max_epochs=args.max_epochs, eval_every=args.eval_every,
                  batch_size=args.batch_size, augment=False)  # fmt: skip
    out = Path(args.out)
    runs = {
        "reference": TrainConfig(out=str(out / "reference"), seed=0, **common),
        "ordinary": TrainConfig(out=str(out / "ordinary"), seed=1, **common),
    }
    runs["orthogonal"] = TrainConfig(out=str(out / "orthogonal"), seed=1, lam=args.lam,
                                     references=[str(out / "reference" / "model.ckpt")], **common)  # fmt: skip
    trained = {}
    for name, config in runs.items():  # the reference first: the orthogonal model needs it
        if not (Path(config.out) / "model.ckpt").is_file():
            train(config, resume=(Path(config.out) / "state.pt").is_file())
        trained[name] = load_model(Path(config.out) / "model.ckpt")
    test = open_dataset(data, "test")
    print(f"{'model':<12} {'accuracy':>9}  {'δ to reference':>18}  {'|δ| to reference':>18}")
    for name, model in trained.items():
        acc = accuracy(model, test, torch.device("cpu"))
        if name == "reference":
            print(f"{name:<12} {acc:8.2f}%")
            continue
        s = gradients.similarity(trained["reference"], model, test)
        print(f"{name:<12} {acc:8.2f}%  {s.mean:+8.3f} ± {s.std:.3f}  {s.abs_mean:8.3f} ± {s.abs_std:.3f}")


if __name__ == "__main__":
    main()
