// sdk.mjs logs one run to a W&B-compatible server with the official JS SDK (@wandb/sdk 0.5.1):
// wandb.init, 10 x run.log, run.finish. The server comes from WANDB_BASE_URL and WANDB_API_KEY; the
// project from MAMI_PROJECT. It prints the run id as JSON on its last line.
import wandb from '@wandb/sdk';

const project = process.env.MAMI_PROJECT || 'js-sdk';
const run = await wandb.init({ project, config: { lr: 0.001, fusion: 'concat', model: { hidden: 512 } } });
for (let i = 0; i < 10; i++) {
  (run ?? wandb).log({ loss: 1 / (i + 1), acc: i / 10 });
}
await (run ?? wandb).finish();
console.log(JSON.stringify({ id: (run ?? wandb.run)?.id ?? null }));
