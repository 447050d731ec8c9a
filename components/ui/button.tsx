import { cva, type VariantProps } from "class-variance-authority";
import type { ButtonHTMLAttributes } from "react";
import { cn } from "@/components/lib/cn";

const button = cva(
  "inline-flex items-center justify-center border px-3 h-[23px] min-w-[75px] text-[12px] outline-none focus-visible:ring-1 focus-visible:ring-select-strong disabled:text-muted disabled:border-border-light disabled:bg-chrome",
  {
    variants: {
      variant: {
        default: "bg-[#e1e1e1] border-[#adadad] hover:bg-hover hover:border-select-strong",
        primary: "bg-[#e1e1e1] border-select-strong hover:bg-hover",
      },
    },
    defaultVariants: { variant: "default" },
  },
);

export function Button({ className, variant, type = "button", ...props }: ButtonHTMLAttributes<HTMLButtonElement> & VariantProps<typeof button>) {
  return <button type={type} className={cn(button({ variant }), className)} {...props} />;
}
