import { useState } from "react";
import { chooseTheme, savedTheme, type ThemeChoice } from "../lib/theme";

const CHOICES: [ThemeChoice, string][] = [["system", "Like the system"], ["light", "Light"], ["dark", "Dark"]];

/** Light, dark, or whatever the system uses (the default). */
export function AppearanceCard() {
  const [choice, setChoice] = useState<ThemeChoice>(savedTheme);
  return (
    <fieldset className="card" id="appearance">
      <legend><h2>Appearance</h2></legend>
      <div className="row">
        {CHOICES.map(([value, label]) => (
          <label key={value} className="row">
            <input type="radio" name="theme" id={`theme-${value}`} value={value} checked={choice === value}
              onChange={() => {
                setChoice(value);
                chooseTheme(value);
              }} />
            {label}
          </label>
        ))}
      </div>
    </fieldset>
  );
}
