/**
 * A tiny real guest for the QEMU tests, built from Debian's packages only: the kernel in
 * /boot, its virtio-scsi modules, and busybox-static in an initramfs, on a FAT disk image
 * made bootable with syslinux. Its init looks for a marker at 48 MiB of its disk: it prints
 * a marker it finds on the serial console, or writes a new one; then it powers off.
 */
import { execFile } from "node:child_process";
import { chmod, copyFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
export const MARKER_OFFSET = 48 * 1024 * 1024;
const MODULES = ["virtio_pci", "virtio_scsi", "sd_mod", "crct10dif_generic"];

/** The newest kernel in /boot whose modules are installed. */
async function kernel(): Promise<{ image: string; modules: string }> {
  const images = (await readdir("/boot")).filter((f) => f.startsWith("vmlinuz-")).sort().reverse();
  for (const f of images) {
    const modules = join("/lib/modules", f.slice("vmlinuz-".length));
    if (existsSync(join(modules, "modules.dep"))) return { image: join("/boot", f), modules };
  }
  throw new Error("no kernel with modules in /boot (apt-get install linux-image-amd64)");
}

/** Module files in load order (dependencies first), from modules.dep. */
async function moduleOrder(dir: string): Promise<string[]> {
  const deps = new Map<string, string[]>();
  for (const line of (await readFile(join(dir, "modules.dep"), "utf8")).split("\n")) {
    const [mod, rest] = line.split(":");
    if (mod) deps.set(mod, (rest ?? "").trim().split(/\s+/).filter(Boolean));
  }
  const byName = new Map([...deps.keys()].map((m) => [basename(m).replace(/\.ko(\.\w+)?$/, "").replace(/-/g, "_"), m]));
  const order: string[] = [];
  const visit = (m: string) => {
    if (order.includes(m)) return;
    for (const d of [...(deps.get(m) ?? [])].reverse()) visit(d);
    order.push(m);
  };
  for (const name of MODULES) {
    const m = byName.get(name);
    if (m) visit(m);
  }
  return order;
}

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m 2>/dev/null; done
i=0
while [ ! -b /dev/sda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mark=$(dd if=/dev/sda bs=512 skip=${MARKER_OFFSET / 512} count=1 2>/dev/null | tr -d '\\000' | head -n 1)
case "$mark" in
  RM-MARKER*) echo "MARKER-FOUND: $mark" > /dev/ttyS0 ;;
  *) new="RM-MARKER $(cat /proc/sys/kernel/random/uuid)"
     echo "$new" | dd of=/dev/sda bs=512 seek=${MARKER_OFFSET / 512} conv=notrunc,fsync 2>/dev/null
     sync
     echo "MARKER-WRITTEN: $new" > /dev/ttyS0 ;;
esac
poweroff -f
`;

/** Builds the bootable image (about 12 MiB) in `dir`; returns its path. */
export async function buildTinyGuest(dir: string): Promise<string> {
  const { image, modules } = await kernel();
  const root = join(dir, "initramfs");
  for (const d of ["bin", "proc", "sys", "dev", "mods"]) await mkdir(join(root, d), { recursive: true });
  await copyFile("/bin/busybox", join(root, "bin", "busybox"));
  await writeFile(join(root, "init"), INIT);
  await chmod(join(root, "init"), 0o755);
  const order = await moduleOrder(modules);
  for (const m of order) await copyFile(join(modules, m), join(root, "mods", basename(m)));
  await writeFile(join(root, "mods", "order"), order.map((m) => basename(m)).join("\n") + "\n");
  const initrd = join(dir, "initrd.gz");
  await run("sh", ["-c", `cd '${root}' && find . | cpio -o -H newc --quiet | gzip -1 > '${initrd}'`]);
  const img = join(dir, "boot.img");
  await run("mkfs.vfat", ["-C", img, String(24 * 1024)]);
  await run("syslinux", ["--install", img]);
  const cfg = join(dir, "syslinux.cfg");
  await writeFile(cfg, "DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND console=ttyS0 quiet panic=-1\n");
  for (const [src, name] of [[image, "vmlinuz"], [initrd, "initrd.gz"], [cfg, "syslinux.cfg"]] as const) await run("mcopy", ["-i", img, src, `::${name}`]);
  return img;
}
