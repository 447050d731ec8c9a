"use client";

/** Cycle size and latency over time, from the agent's cycle history (recharts). */
import { Bar, BarChart, CartesianGrid, Line, LineChart, Tooltip, XAxis, YAxis } from "recharts";
import { formatBytes } from "@/components/lib/format";
import type { RouterOutputs } from "@/components/lib/trpc";

type Cycle = RouterOutputs["health"]["cycles"][number];

const time = (iso: string) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const axis = { fontSize: 10, fill: "#6d6d6d" };
const WIDTH = 362;
const HEIGHT = 150;

function Frame({ title, testId, children }: { title: string; testId: string; children: React.ReactNode }) {
  return (
    <figure className="border border-border-light bg-white p-1" data-testid={testId}>
      <figcaption className="mb-1 px-1">{title}</figcaption>
      {children}
    </figure>
  );
}

export function HealthCharts({ cycles }: { cycles: Cycle[] }) {
  if (cycles.length === 0) return <div className="border border-border-light bg-white p-3 text-muted">No replication cycles yet.</div>;
  const data = cycles.map((c) => ({ ...c, label: time(c.at), sizeMB: c.sizeBytes / 1048576, latencyS: c.latencyMs === null ? null : c.latencyMs / 1000 }));
  return (
    <div className="flex gap-2">
      <Frame title={`Size of each cycle (last ${cycles.length})`} testId="health-chart-size">
        <BarChart width={WIDTH} height={HEIGHT} data={data} margin={{ top: 4, right: 8, bottom: 0, left: -8 }}>
          <CartesianGrid stroke="#ececec" vertical={false} />
          <XAxis dataKey="label" tick={axis} minTickGap={40} />
          <YAxis tick={axis} tickFormatter={(v: number) => `${v.toFixed(v < 10 ? 1 : 0)} MB`} width={56} />
          <Tooltip formatter={(_v, _n, p) => [formatBytes((p.payload as Cycle).sizeBytes), "Size"]} labelFormatter={(l) => `Cycle at ${l}`} />
          <Bar dataKey="sizeMB" fill="#0078d7" isAnimationActive={false} />
        </BarChart>
      </Frame>
      <Frame title="Latency of each cycle" testId="health-chart-latency">
        <LineChart width={WIDTH} height={HEIGHT} data={data} margin={{ top: 4, right: 8, bottom: 0, left: -8 }}>
          <CartesianGrid stroke="#ececec" vertical={false} />
          <XAxis dataKey="label" tick={axis} minTickGap={40} />
          <YAxis tick={axis} tickFormatter={(v: number) => `${v.toFixed(1)} s`} width={56} />
          <Tooltip formatter={(v) => [`${Number(v).toFixed(2)} s`, "Latency"]} labelFormatter={(l) => `Cycle at ${l}`} />
          <Line dataKey="latencyS" stroke="#b36b00" dot={false} strokeWidth={1.5} isAnimationActive={false} connectNulls />
        </LineChart>
      </Frame>
    </div>
  );
}
