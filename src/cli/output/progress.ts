/** A one-line progress bar on a terminal (stderr), redrawn at most ten times a second. */
export function progressBar(out: NodeJS.WritableStream, total: number) {
  let last = 0;
  const started = performance.now();
  const draw = (done: number) => {
    const width = 30;
    const filled = Math.round((done / total) * width);
    const rate = done / ((performance.now() - started) / 1000);
    out.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}  ${rate.toFixed(0)}/s `);
  };
  return {
    update(done: number) {
      const now = performance.now();
      if (now - last > 100 || done === total) {
        last = now;
        draw(done);
      }
    },
    done: () => out.write('\n'),
  };
}
